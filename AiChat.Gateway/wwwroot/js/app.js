// The web client's entry point: the language, the session (log in / register / log out), and the chat once signed in.
import { translate, setLanguage, getLanguage, LANGUAGES, t } from './i18n.js';
import { login, register, logout, restore, onSessionChange, request } from './api.js';
import { describe, notifyError } from './notices.js';
import { initConversations } from './conversations.js';
import { initChat } from './chat.js';
import { initMemory } from './memory.js';
import { initBudget } from './budget.js';

const authView = document.getElementById('auth-view');
const appView = document.getElementById('app-view');

function setUpLanguages() {
  for (const select of document.querySelectorAll('.language-select')) {
    select.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => new Option(name, code)));
    select.value = getLanguage();
    select.addEventListener('change', () => setLanguage(select.value));
  }
  window.addEventListener('aichat:language', () => {
    document.querySelectorAll('.language-select').forEach(select => { select.value = getLanguage(); });
  });
  translate(document);
}

function setUpAuthForm() {
  const form = document.getElementById('auth-form');
  const nameField = document.getElementById('auth-name-field');
  const password = document.getElementById('auth-password');
  const submit = document.getElementById('auth-submit');
  const error = document.getElementById('auth-error');
  let mode = 'login';
  const setMode = next => {
    mode = next;
    for (const tab of form.querySelectorAll('[role=tab]')) {
      tab.setAttribute('aria-selected', String(tab.dataset.mode === mode));
    }
    nameField.hidden = mode !== 'register';
    password.autocomplete = mode === 'register' ? 'new-password' : 'current-password';
    submit.dataset.i18n = mode === 'register' ? 'auth.register' : 'auth.login';
    submit.textContent = t(submit.dataset.i18n);
    error.hidden = true;
  };
  form.querySelectorAll('[role=tab]').forEach(tab => tab.addEventListener('click', () => setMode(tab.dataset.mode)));
  form.addEventListener('submit', async event => {
    event.preventDefault();
    const email = document.getElementById('auth-email').value.trim();
    const name = document.getElementById('auth-name').value.trim();
    submit.disabled = true;
    error.hidden = true;
    try {
      if (mode === 'register') {
        await register(email, password.value, name || undefined);
      } else {
        await login(email, password.value);
      }
      password.value = '';
    } catch (failure) {
      error.textContent = describe(failure);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

/** A yes/no question in the confirm dialog: resolves true for yes. */
function confirm(text) {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-text').textContent = text;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise(resolve => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

/** A name from the name dialog (prefilled with current): resolves the trimmed text, or null when cancelled. */
function askName(current) {
  const dialog = document.getElementById('name-dialog');
  const field = document.getElementById('name-input');
  field.value = current;
  dialog.returnValue = '';
  dialog.showModal();
  field.select();
  return new Promise(resolve => dialog.addEventListener('close', () => {
    const name = field.value.trim();
    resolve(dialog.returnValue === 'ok' && name ? name : null);
  }, { once: true }));
}

function setUpDialogs() {
  // Cancel is a plain button, not a submitter: Enter in a field submits with the dialog's default (OK) button.
  for (const close of document.querySelectorAll('.dialog-close, .dialog-cancel')) {
    close.addEventListener('click', () => close.closest('dialog').close('cancel'));
  }
}

let chat;
let conversations;
let started = false;

async function showApp() {
  authView.hidden = true;
  appView.hidden = false;
  if (!started) {
    started = true;
    conversations = initConversations({ onSelect: conversation => chat.open(conversation) });
    chat = initChat({ conversations, confirm, askName });
    initMemory({ confirm });
    initBudget();
  }
  try {
    const catalogue = await request('/api/v1/models');
    chat.setModels(catalogue.models);
    document.getElementById('offline-notice').hidden = !catalogue.offline;
    await conversations.load();
    window.dispatchEvent(new CustomEvent('aichat:signed-in'));
  } catch (error) {
    notifyError(error);
  }
  document.getElementById('composer-input').focus();
}

function showAuth() {
  appView.hidden = true;
  authView.hidden = false;
  if (started) {
    chat.reset();
    conversations.reset();
    window.dispatchEvent(new CustomEvent('aichat:signed-out'));
  }
  document.getElementById('auth-email').focus();
}

setUpLanguages();
setUpAuthForm();
setUpDialogs();
document.getElementById('logout-button').addEventListener('click', () => logout());
onSessionChange(signedIn => (signedIn ? showApp() : showAuth()));
if (await restore()) {
  showApp();
} else {
  showAuth();
}
