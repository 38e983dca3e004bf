/**
 * Documents: the collection's documents the key may read, a page at a time, filtered by metadata (the
 * same JSON filter search takes) and source prefix; delete one (after a confirm); upload files and follow
 * the ingest's progress, then each file's outcome (added, updated, unchanged or failed with its reason).
 */
import { useEffect, useState } from 'preact/hooks';
import type { DocumentListResponse, IngestResponse, UploadEvent } from '../../client/index.js';
import { canIngest, type Session } from '../main.js';

const PAGE = 20;

const text = (v: unknown) => (typeof v === 'string' ? v : '');
const list = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);

/** Who may read a document, from its access metadata ('' when anyone may). */
function access(meta: Record<string, unknown>): string {
  const parts = [...list(meta.access_groups), ...list(meta.access_users).map((u) => `user ${u}`)];
  const level = meta.security_level;
  if (typeof level === 'number' && level > 0) parts.push(`level ${level}`);
  return parts.join(', ');
}

/** The upload's progress line: what the server last reported. */
interface UploadState {
  phase: string;
  done: number;
  total: number;
  label: string;
}

const kb = (n: number) => (n < 1024 ? `${n} bytes` : `${(n / 1024).toFixed(1)} kB`);

/** One upload stream event as the progress line shows it (the result and the end are shown elsewhere). */
export function uploadState(e: UploadEvent, prev: UploadState | undefined): UploadState | undefined {
  if (e.event === 'received')
    return {
      phase: 'received',
      done: 0,
      total: e.data.files.length,
      label: `Received ${e.data.files.length} file${e.data.files.length === 1 ? '' : 's'} (${kb(e.data.bytes)})`,
    };
  if (e.event === 'progress') {
    const d = e.data;
    const count = (n: number | undefined, what: string) =>
      n === undefined ? '' : `${n} ${what}${n === 1 ? '' : 's'}`;
    const extra = [count(d.documents, 'document'), count(d.chunks, 'chunk')].filter((x) => x !== '');
    return {
      phase: d.phase,
      done: d.done,
      total: d.total,
      label: `${d.phase} ${d.done}/${d.total} ${d.unit}${extra.length > 0 ? ` · ${extra.join(', ')}` : ''}`,
    };
  }
  if (e.event === 'result' && prev !== undefined) return { ...prev, phase: 'done', done: prev.total };
  return prev;
}

function Upload(props: { session: Session; onDone: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [progress, setProgress] = useState<UploadState | undefined>();
  const [result, setResult] = useState<IngestResponse | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const upload = async (e: Event) => {
    e.preventDefault();
    if (files.length === 0) return;
    setBusy(true);
    setResult(undefined);
    setError(undefined);
    setProgress(undefined);
    let state: UploadState | undefined;
    let streamError: string | undefined;
    try {
      const r = await props.session.api.upload(files, {
        collection: props.session.collection,
        onProgress: (ev) => {
          if (ev.event === 'error') streamError = `${ev.data.code}: ${ev.data.message}`;
          state = uploadState(ev, state);
          setProgress(state);
        },
      });
      setResult(r);
      props.onDone();
    } catch (err) {
      setError(streamError ?? (err instanceof Error ? err.message : String(err)));
    } finally {
      setBusy(false);
    }
  };

  const pct = progress === undefined || progress.total === 0 ? 0 : (progress.done / progress.total) * 100;
  return (
    <form class="card upload" onSubmit={upload}>
      <h2>Upload</h2>
      <div class="row">
        <input
          type="file"
          name="files"
          multiple
          aria-label="Files to upload"
          onChange={(e) => setFiles([...(e.currentTarget.files ?? [])])}
        />
        <button type="submit" disabled={busy || files.length === 0}>
          Upload {files.length > 0 ? `${files.length} file${files.length === 1 ? '' : 's'}` : ''}
        </button>
      </div>
      {progress === undefined ? null : (
        <div class="progress" data-testid="upload-progress" data-phase={progress.phase}>
          <span class="progress-label">{progress.label}</span>
          <span class="meter wide">
            <span class="fill" style={{ width: `${pct}%` }} />
          </span>
        </div>
      )}
      {error === undefined ? null : (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {result === undefined ? null : (
        <div data-testid="upload-result">
          <p>
            {result.added} added · {result.updated} updated · {result.unchanged} unchanged · {result.failed}{' '}
            failed · {result.chunks} chunks
          </p>
          <table class="grid">
            <thead>
              <tr>
                <th>document</th>
                <th>status</th>
                <th>message</th>
              </tr>
            </thead>
            <tbody>
              {result.documents.map((d, i) => (
                <tr key={`${d.id ?? d.source ?? ''}-${i}`} data-status={d.status}>
                  <td>{d.id ?? d.source}</td>
                  <td>
                    <span class={`pill ${d.status}`}>{d.status}</span>
                  </td>
                  <td>{d.message === undefined ? '' : `${d.code ?? ''} ${d.message}`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </form>
  );
}

export function DocumentsView(props: { session: Session }) {
  const { session } = props;
  const [source, setSource] = useState('');
  const [filter, setFilter] = useState('');
  const [applied, setApplied] = useState<{ source: string; filter: string }>({ source: '', filter: '' });
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<DocumentListResponse | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [version, setVersion] = useState(0);

  useEffect(() => {
    setError(undefined);
    session.api
      .listDocuments(
        {
          limit: PAGE,
          offset,
          ...(applied.filter.trim() === '' ? {} : { filter: applied.filter.trim() }),
          ...(applied.source === '' ? {} : { source: applied.source }),
        },
        { collection: session.collection },
      )
      .then(setPage)
      .catch((e: unknown) => {
        setPage(undefined);
        setError(e instanceof Error ? e.message : String(e));
      });
  }, [session.api, session.collection, offset, applied, version]);

  const remove = async (id: string) => {
    if (!confirm(`Delete document "${id}"? Nothing of it stays searchable.`)) return;
    try {
      await session.api.deleteDocument(id, { collection: session.collection });
      setVersion((v) => v + 1);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const write = canIngest(session);

  return (
    <div class="documents">
      {write ? <Upload session={session} onDone={() => setVersion((v) => v + 1)} /> : null}
      <section class="card">
        <h2>Documents</h2>
        <form
          class="row filters"
          onSubmit={(e) => {
            e.preventDefault();
            setOffset(0);
            setApplied({ source, filter });
          }}
        >
          <input
            type="text"
            aria-label="Source prefix"
            placeholder="source starts with…"
            value={source}
            onInput={(e) => setSource(e.currentTarget.value)}
          />
          <input
            type="text"
            class="grow"
            aria-label="Metadata filter"
            placeholder='metadata filter, e.g. {"tags":{"$in":["finance"]}}'
            value={filter}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
          <button type="submit">Filter</button>
        </form>
        {error === undefined ? null : (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {page === undefined ? null : (
          <>
            <table class="grid" data-testid="documents">
              <thead>
                <tr>
                  <th>id</th>
                  <th>title</th>
                  <th>source</th>
                  <th>status</th>
                  <th>chunks</th>
                  <th>chars</th>
                  <th>tags</th>
                  <th>access</th>
                  <th>updated</th>
                  {write ? <th /> : null}
                </tr>
              </thead>
              <tbody>
                {page.documents.map((d) => (
                  <tr key={d.id} data-doc={d.id}>
                    <td>
                      <code>{d.id}</code>
                    </td>
                    <td>{text(d.meta.title)}</td>
                    <td class="source">{text(d.meta.source)}</td>
                    <td>
                      <span class="pill ok">{d.status}</span>
                    </td>
                    <td class="num">{d.chunkCount}</td>
                    <td class="num">{d.charCount}</td>
                    <td>{list(d.meta.tags).join(', ')}</td>
                    <td>{access(d.meta)}</td>
                    <td>
                      {typeof d.meta.updated_at === 'string'
                        ? new Date(d.meta.updated_at).toLocaleDateString()
                        : ''}
                    </td>
                    {write ? (
                      <td>
                        <button type="button" class="link danger" onClick={() => remove(d.id)}>
                          Delete
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
            {page.documents.length === 0 ? <p class="muted">No documents match.</p> : null}
            <div class="row pager">
              <button
                type="button"
                disabled={offset === 0}
                onClick={() => setOffset(Math.max(0, offset - PAGE))}
              >
                ← Previous
              </button>
              <span class="muted">
                {page.documents.length === 0 ? 0 : offset + 1}–{offset + page.documents.length}
              </span>
              <button
                type="button"
                disabled={page.nextOffset === null}
                onClick={() => page.nextOffset !== null && setOffset(page.nextOffset)}
              >
                Next →
              </button>
            </div>
          </>
        )}
      </section>
    </div>
  );
}
