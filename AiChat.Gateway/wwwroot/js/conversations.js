// The conversation list (keyset pages, newest activity first), creating, renaming and deleting, and search across all
// conversations. The selected conversation is in the address (#/c/<id>), so a reload opens it again.
import { request } from './api.js';
import { t, formatDateTime } from './i18n.js';
import { notifyError } from './notices.js';
import DOMPurify from '../vendor/purify.es.mjs';
import { element } from './dom.js';

const PAGE = 30;

export function initConversations({ onSelect }) {
  const list = document.getElementById('conversation-list');
  const more = document.getElementById('conversations-more');
  const searchForm = document.getElementById('search-form');
  const searchInput = document.getElementById('search-input');
  const results = document.getElementById('search-results');
  const hits = document.getElementById('search-list');
  const sidebar = document.getElementById('sidebar');
  const toggle = document.getElementById('sidebar-toggle');
  let conversations = [];
  let nextCursor = null;
  let selectedId = null;

  const titleOf = conversation => conversation.title || t('conversations.untitled');

  function render() {
    list.replaceChildren(...conversations.map(conversation => element('li', {},
      element('a', {
        href: `#/c/${conversation.id}`,
        class: 'conversation-link',
        'data-id': conversation.id,
        'aria-current': conversation.id === selectedId ? 'page' : null,
      },
      element('span', { class: 'conversation-title' }, titleOf(conversation)),
      element('span', { class: 'conversation-meta' }, t('conversations.messages', { count: conversation.message_count }))))));
    more.hidden = nextCursor === null;
  }

  async function loadPage(before) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (before) {
      query.set('before', before);
    }
    const page = await request(`/api/v1/conversations?${query}`);
    conversations = before ? [...conversations, ...page.conversations] : page.conversations;
    nextCursor = page.next_cursor;
    render();
  }

  function upsert(conversation) {
    const index = conversations.findIndex(c => c.id === conversation.id);
    if (index >= 0) {
      conversations[index] = conversation;
    } else {
      conversations.unshift(conversation);
    }
    render();
  }

  /** Moves a conversation to the top (new activity), as the next list page from the API would show it. */
  function touch(conversation) {
    conversations = [conversation, ...conversations.filter(c => c.id !== conversation.id)];
    render();
  }

  function remove(id) {
    conversations = conversations.filter(c => c.id !== id);
    render();
  }

  function select(id) {
    const conversation = conversations.find(c => c.id === id);
    if (!conversation) {
      return false;
    }
    selectedId = id;
    render();
    closeSidebar();
    onSelect(conversation);
    return true;
  }

  async function selectFromAddress() {
    const id = /^#\/c\/([0-9a-f-]{36})$/i.exec(location.hash)?.[1];
    if (id && !select(id)) {
      try {
        upsert(await request(`/api/v1/conversations/${id}`));
        select(id);
        return;
      } catch {
        // gone or not this user's: fall through to the newest
      }
    }
    if (!id || selectedId !== id) {
      if (conversations.length === 0) {
        upsert(await request('/api/v1/conversations', { method: 'POST', body: {} }));
      }
      location.replace(`#/c/${conversations[0].id}`);
      select(conversations[0].id);
    }
  }

  async function create() {
    try {
      const conversation = await request('/api/v1/conversations', { method: 'POST', body: {} });
      upsert(conversation);
      location.hash = `#/c/${conversation.id}`;
    } catch (error) {
      notifyError(error);
    }
  }

  async function search(query) {
    const page = await request(`/api/v1/search?${new URLSearchParams({ query, limit: '20' })}`);
    hits.replaceChildren(...page.hits.map(hit => {
      const snippet = element('span', { class: 'hit-snippet' });
      // The API escapes the message text and marks the matches with <mark>: only that tag is let through.
      snippet.innerHTML = DOMPurify.sanitize(hit.snippet, { ALLOWED_TAGS: ['mark'], ALLOWED_ATTR: [] });
      const link = element('a', { href: `#/c/${hit.conversation_id}`, class: 'hit', 'data-message-id': hit.message_id },
        element('span', { class: 'hit-title' }, hit.conversation_title || t('conversations.untitled')),
        snippet,
        element('time', { datetime: hit.created_at }, formatDateTime(hit.created_at)));
      link.addEventListener('click', event => {
        pendingMessage = hit.message_id;
        if (location.hash === link.getAttribute('href')) {
          event.preventDefault();
          select(hit.conversation_id); // already open: no hashchange, so open it again at the hit
        }
      });
      return element('li', {}, link);
    }));
    if (page.hits.length === 0) {
      hits.append(element('li', { class: 'empty' }, t('search.none')));
    }
    results.hidden = false;
  }

  let pendingMessage = null;

  function closeSidebar() {
    sidebar.classList.remove('open');
    toggle.setAttribute('aria-expanded', 'false');
  }

  toggle.addEventListener('click', () => {
    const open = sidebar.classList.toggle('open');
    toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      sidebar.querySelector('a, button, input')?.focus();
    }
  });
  sidebar.addEventListener('keydown', event => {
    if (event.key === 'Escape' && sidebar.classList.contains('open')) {
      closeSidebar();
      toggle.focus();
    }
  });
  document.getElementById('new-conversation').addEventListener('click', create);
  more.addEventListener('click', () => loadPage(nextCursor).catch(notifyError));
  searchForm.addEventListener('submit', event => {
    event.preventDefault();
    const query = searchInput.value.trim();
    if (query) {
      search(query).catch(notifyError);
    }
  });
  document.getElementById('search-clear').addEventListener('click', () => {
    searchInput.value = '';
    results.hidden = true;
    hits.replaceChildren();
    searchInput.focus();
  });
  window.addEventListener('hashchange', () => selectFromAddress().catch(notifyError));
  window.addEventListener('aichat:language', render);

  return {
    async load() {
      await loadPage(null);
      await selectFromAddress();
    },
    upsert,
    touch,
    remove,
    next: id => conversations.find(c => c.id !== id) ?? null,
    selected: () => conversations.find(c => c.id === selectedId) ?? null,
    takePendingMessage() {
      const id = pendingMessage;
      pendingMessage = null;
      return id;
    },
    reset() {
      conversations = [];
      nextCursor = null;
      selectedId = null;
      results.hidden = true;
      hits.replaceChildren();
      searchInput.value = '';
      render();
    },
    create,
  };
}
