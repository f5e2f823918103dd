// Talking to the API: the session (tokens), authorised requests, and problem documents as errors.
//
// Where the tokens live: the access token only in memory (it is short-lived and every request sends it); the refresh
// token in localStorage, so the session survives a reload and a second tab. That makes it readable by script on this
// origin, which is why the client runs under a strict Content-Security-Policy (no inline or foreign script) and renders
// every message through a sanitiser; refresh tokens rotate, and a reused one is refused by the API. Refreshes are
// serialised across tabs with the Web Locks API, always with the newest token in storage.

const STORAGE_KEY = 'aichat.session';
const REFRESH_MARGIN_MS = 60_000;

let accessToken = null;
let expiresAt = 0;
let refreshTimer = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code ?? (status === 0 ? 'network' : '');
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

const stored = () => {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
};

export const currentUser = () => stored()?.user ?? null;
export const signedIn = () => stored() !== null;

/** Called with true on sign-in, false on sign-out (here, in another tab, or when the session cannot be refreshed). */
export function onSessionChange(listener) {
  listeners.add(listener);
}

const notify = state => listeners.forEach(listener => listener(state));

window.addEventListener('storage', event => {
  if (event.key === STORAGE_KEY && event.newValue === null) {
    forget();
    notify(false);
  }
});

function accept(pair) {
  accessToken = pair.access_token;
  expiresAt = Date.now() + pair.expires_in * 1000;
  localStorage.setItem(STORAGE_KEY, JSON.stringify({ refresh_token: pair.refresh_token, user: pair.user ?? currentUser() }));
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(5_000, expiresAt - Date.now() - REFRESH_MARGIN_MS));
}

function forget() {
  accessToken = null;
  expiresAt = 0;
  clearTimeout(refreshTimer);
}

function signOutLocally() {
  forget();
  localStorage.removeItem(STORAGE_KEY);
  notify(false);
}

async function post(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0);
  }
  if (!response.ok) {
    throw await problemOf(response);
  }
  return response.json();
}

export async function login(email, password) {
  accept(await post('/api/v1/auth/login', { email, password }));
  notify(true);
}

export async function register(email, password, name) {
  const answer = await post('/api/v1/auth/register', name ? { email, password, name } : { email, password });
  if (answer.confirmation_required) {
    return { confirmationRequired: true };
  }
  accept(answer);
  notify(true);
  return { confirmationRequired: false };
}

export async function logout() {
  try {
    if (accessToken || signedIn()) {
      await request('/api/v1/auth/logout', { method: 'POST' });
    }
  } catch {
    // Signing out here matters more than telling the server; its refresh token is forgotten either way.
  }
  signOutLocally();
}

/** A fresh access token from the stored refresh token; signs out when the API refuses it. */
async function refresh() {
  const run = async () => {
    const session = stored();
    if (!session) {
      throw new ApiError(401, { code: 'signed_out' });
    }
    if (accessToken && Date.now() < expiresAt - REFRESH_MARGIN_MS) {
      return; // another caller in this tab refreshed while this one waited
    }
    try {
      accept(await post('/api/v1/auth/refresh', { refresh_token: session.refresh_token }));
    } catch (error) {
      if (error.status === 401 || error.status === 400) {
        signOutLocally();
      }
      throw error;
    }
  };
  return navigator.locks ? navigator.locks.request(STORAGE_KEY, run) : run();
}

/** Restores the session after a reload: true when there is one. */
export async function restore() {
  if (!signedIn()) {
    return false;
  }
  try {
    await refresh();
    return true;
  } catch (error) {
    return signedIn(); // a network error keeps the session; a refused token has signed out
  }
}

async function token() {
  if (!accessToken || Date.now() > expiresAt - REFRESH_MARGIN_MS / 2) {
    await refresh();
  }
  return accessToken;
}

/**
 * An authorised request. JSON in and out by default; with stream: true the Response itself (for Server-Sent Events).
 * A 401 refreshes the token once and retries; any other failure throws an ApiError with the problem document.
 */
export async function request(path, { method = 'GET', body, headers = {}, signal, stream = false } = {}) {
  const send = async () => fetch(path, {
    method,
    signal,
    headers: {
      Accept: stream ? 'text/event-stream' : 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
      Authorization: `Bearer ${await token()}`,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let response;
  try {
    response = await send();
    if (response.status === 401 && signedIn()) {
      forget();
      response = await send();
    }
  } catch (error) {
    if (error instanceof ApiError || error.name === 'AbortError') {
      throw error;
    }
    throw new ApiError(0);
  }
  if (!response.ok) {
    throw await problemOf(response);
  }
  if (stream) {
    return response;
  }
  return response.status === 204 ? null : response.json();
}

async function problemOf(response) {
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // not a problem document (a proxy's page): the status says enough
  }
  const retryAfter = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
  return new ApiError(response.status, problem, Number.isFinite(retryAfter) ? retryAfter : null);
}
