/**
 * The web UI's shell: who is signed in (an API key kept in sessionStorage, or the trusted owner of a
 * key-less loopback server), the collection in use, and a hash router over the views (ask, trace,
 * documents, evaluation). Every view gets the same typed client (`quarry/client`), so each request carries
 * the session's key and the UI shows only what the server returns for that key.
 */
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import {
  type CollectionResponse,
  QuarryApiError,
  QuarryClient,
  type WhoamiResponse,
} from '../client/index.js';
import './styles.css';
import { AskView } from './views/ask.js';
import { DocumentsView } from './views/documents.js';
import { EvalView } from './views/eval.js';
import { LoginView } from './views/login.js';
import { TraceView } from './views/trace.js';

const KEY = 'quarry.apiKey';

export interface Session {
  api: QuarryClient;
  who: WhoamiResponse;
  collections: CollectionResponse[];
  collection: string;
}

/** The session may administer (eval runs need the admin scope). */
export const isAdmin = (s: Session) => s.who.kind === 'trusted' || s.who.scopes.includes('admin');
/** The session may write documents. */
export const canIngest = (s: Session) => isAdmin(s) || s.who.scopes.includes('ingest');

/** A key the server refused (unknown, malformed, revoked), or a server that needs one. */
export class NeedsKey extends Error {}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

/** Resolve a key (or none) to a session; a QuarryApiError (401) for a key the server refuses. */
async function signIn(key: string | undefined): Promise<Omit<Session, 'collection'>> {
  const api = new QuarryClient({ baseUrl: location.origin, ...(key === undefined ? {} : { apiKey: key }) });
  const who = await api.whoami();
  if (who.kind === 'anonymous') throw new NeedsKey('this server needs an API key');
  const { collections } = await api.listCollections();
  return { api, who, collections };
}

function whoLabel(who: WhoamiResponse): string {
  if (who.kind === 'trusted') return 'local owner (no keys configured)';
  const parts = [`key ${who.keyId ?? '?'}`];
  if (who.tenant !== undefined) parts.push(`tenant ${who.tenant}`);
  if (who.scopes.length > 0) parts.push(who.scopes.join(', '));
  return parts.join(' · ');
}

function App() {
  const hash = useHash();
  const [session, setSession] = useState<Session | undefined>();
  const [needLogin, setNeedLogin] = useState(false);
  const [fatal, setFatal] = useState<string | undefined>();

  const start = useCallback(async (key: string | undefined) => {
    const s = await signIn(key);
    setSession({ ...s, collection: s.collections[0]?.name ?? 'default' });
    setNeedLogin(false);
  }, []);

  useEffect(() => {
    const stored = sessionStorage.getItem(KEY) ?? undefined;
    start(stored).catch((e: unknown) => {
      if (e instanceof NeedsKey || (e instanceof QuarryApiError && e.status === 401)) {
        sessionStorage.removeItem(KEY);
        setNeedLogin(true);
      } else setFatal(e instanceof Error ? e.message : String(e));
    });
  }, [start]);

  const login = async (key: string) => {
    await start(key);
    sessionStorage.setItem(KEY, key);
    if (location.hash === '#/login' || location.hash === '') location.hash = '#/ask';
  };
  const logout = () => {
    sessionStorage.removeItem(KEY);
    setSession(undefined);
    setNeedLogin(true);
  };

  if (fatal !== undefined)
    return (
      <main class="page">
        <p class="error" role="alert">
          The server could not be reached: {fatal}
        </p>
      </main>
    );
  if (needLogin || session === undefined)
    return needLogin ? <LoginView onLogin={login} /> : <main class="page muted">Connecting…</main>;

  const route = hash.replace(/^#\/?/, '').split('/');
  const view = route[0] === '' ? 'ask' : route[0];
  const tab = (name: string, label: string) => (
    <a href={`#/${name}`} class={name.split('/')[0] === view ? 'tab active' : 'tab'}>
      {label}
    </a>
  );
  return (
    <>
      <header class="top">
        <span class="brand">Quarry</span>
        <nav>
          {tab('ask', 'Ask')}
          {tab('documents', 'Documents')}
          {isAdmin(session) ? tab('eval', 'Evaluation') : null}
          {view === 'trace' ? tab(`trace/${route[1] ?? ''}`, 'Trace') : null}
        </nav>
        <label class="collection">
          Collection{' '}
          <select
            value={session.collection}
            onChange={(e) => setSession({ ...session, collection: e.currentTarget.value })}
          >
            {session.collections.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <span class="who" data-testid="who">
          {whoLabel(session.who)}
        </span>
        {session.who.kind === 'user' ? (
          <button type="button" class="link" onClick={logout}>
            Log out
          </button>
        ) : null}
      </header>
      <main class="page">
        {view === 'ask' ? <AskView session={session} /> : null}
        {view === 'trace' ? <TraceView session={session} id={decodeURIComponent(route[1] ?? '')} /> : null}
        {view === 'documents' ? <DocumentsView session={session} /> : null}
        {view === 'eval' ? <EvalView session={session} /> : null}
        {view === 'login' ? <p class="muted">Signed in as {whoLabel(session.who)}.</p> : null}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
