/**
 * Login: the API key is checked against the server before it is kept (sessionStorage, this tab only), so a
 * wrong key is refused here with the server's reason rather than failing later in every view.
 */
import { useState } from 'preact/hooks';
import { QuarryApiError } from '../../client/index.js';

export function LoginView(props: { onLogin: (key: string) => Promise<void> }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await props.onLogin(key.trim());
    } catch (err) {
      setError(
        err instanceof QuarryApiError && err.status === 401
          ? `This API key was not accepted: ${err.message}.`
          : `Could not sign in: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="card" onSubmit={submit}>
        <h1>Quarry</h1>
        <p class="muted">This server needs an API key. It is kept in this browser tab only.</p>
        <label>
          API key
          <input
            type="password"
            name="apiKey"
            autocomplete="off"
            placeholder="qk_…"
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            required
          />
        </label>
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
        {error === undefined ? null : (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
