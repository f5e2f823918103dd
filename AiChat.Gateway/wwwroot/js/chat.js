// One conversation: its history (keyset pages, scrolled back on demand), the composer, and turns rendered as they
// stream. A dropped stream is resumed with Last-Event-ID, so the text continues with no gap and no duplicate.
import { request } from './api.js';
import { readEvents } from './sse.js';
import { renderMarkdown } from './markdown.js';
import { element } from './dom.js';
import { t, formatDateTime } from './i18n.js';
import { describe, notify, notifyError } from './notices.js';

const PAGE = 50;
const TERMINAL = new Set(['turn.completed', 'turn.failed']);

export function initChat({ conversations, confirm, askName }) {
  const scroller = document.getElementById('messages');
  const list = document.getElementById('message-list');
  const older = document.getElementById('older-messages');
  const title = document.getElementById('chat-title');
  const modelSelect = document.getElementById('model-select');
  const composer = document.getElementById('composer');
  const input = document.getElementById('composer-input');
  const send = document.getElementById('send-button');
  const stop = document.getElementById('stop-button');
  let conversation = null;
  let nextCursor = null;
  // The turns running in this page, by conversation: a turn keeps streaming while another conversation is open, and
  // is shown again (with its text so far) when its conversation is opened again.
  const running = new Map(); // conversation id → {id, items, text}
  const runningHere = () => (conversation ? running.get(conversation.id) : undefined);
  let generation = 0; // bumps when another conversation opens, so late answers of the old one are dropped

  // ----- history -----

  async function open(next) {
    conversation = next;
    generation += 1;
    const mine = generation;
    title.textContent = conversation.title || t('conversations.untitled');
    modelSelect.value = conversation.model;
    list.replaceChildren();
    nextCursor = null;
    older.hidden = true;
    const page = await request(`/api/v1/conversations/${conversation.id}/messages?limit=${PAGE}`);
    if (mine !== generation) {
      return;
    }
    addPage(page);
    if (page.messages.length === 0) {
      list.append(emptyHint());
    }
    const live = running.get(conversation.id);
    const liveItem = live?.answerId && list.querySelector(`[data-id="${live.answerId}"]`);
    if (liveItem) {
      // Still streaming in this page: show the text so far and keep it coming into the new element.
      live.items.answerItem = liveItem;
      liveItem.dataset.status = 'streaming';
      renderMarkdown(liveItem.querySelector('.message-body'), live.text);
    }
    showBusy();
    const wanted = conversations.takePendingMessage();
    const target = wanted && list.querySelector(`[data-id="${wanted}"]`);
    if (target) {
      target.scrollIntoView({ block: 'center' });
      target.classList.add('highlight');
    } else {
      scrollToEnd();
    }
    updateActions();
  }

  function addPage(page) {
    // A page is newest first; the list reads oldest first, so each older page goes on top.
    const items = page.messages.slice().reverse().map(messageItem);
    const before = scroller.scrollHeight - scroller.scrollTop;
    list.prepend(...items);
    scroller.scrollTop = scroller.scrollHeight - before;
    nextCursor = page.next_cursor;
    older.hidden = nextCursor === null;
  }

  let loadingOlder = false;

  async function loadOlder() {
    if (!nextCursor || !conversation || loadingOlder) {
      return;
    }
    const mine = generation;
    loadingOlder = true;
    try {
      const page = await request(`/api/v1/conversations/${conversation.id}/messages?limit=${PAGE}&before=${encodeURIComponent(nextCursor)}`);
      if (mine === generation) {
        addPage(page);
      }
    } finally {
      loadingOlder = false;
    }
  }

  const emptyHint = () => element('li', { class: 'empty-hint' }, t('messages.empty'));

  function messageItem(message) {
    const item = element('li', { class: `message message-${message.role}` },
      element('div', { class: 'message-meta' },
        element('span', { class: 'message-author' }, message.role === 'user' ? t('messages.you') : t('messages.assistant')),
        element('time'),
        element('span', { class: 'message-status' })),
      element('div', { class: 'message-body markdown' }),
      element('div', { class: 'message-actions' }));
    update(item, message);
    return item;
  }

  /** Shows message (a MessageDto) in its list item: text, time, status and the answer's actions. */
  function update(item, message) {
    item.dataset.id = message.id;
    item.dataset.status = message.status;
    item.dataset.role = message.role;
    item.dataset.alternatives = String(message.alternatives ?? 0);
    const time = item.querySelector('time');
    time.dateTime = message.created_at;
    time.textContent = formatDateTime(message.created_at);
    const status = item.querySelector('.message-status');
    status.textContent = message.status === 'complete' ? '' : t(`status.${message.status}`);
    renderMarkdown(item.querySelector('.message-body'), message.content);
  }

  function updateActions() {
    for (const actions of list.querySelectorAll('.message-actions')) {
      actions.replaceChildren();
    }
    const answers = list.querySelectorAll('.message-assistant');
    const last = answers[answers.length - 1];
    for (const item of answers) {
      const count = Number(item.dataset.alternatives);
      if (count > 0) {
        item.querySelector('.message-actions').append(alternativesNav(item, count));
      }
    }
    if (last && !runningHere() && last.dataset.status !== 'streaming') {
      const regenerate = element('button', { type: 'button', class: 'ghost regenerate' }, t('messages.regenerate'));
      regenerate.addEventListener('click', () => startRegenerate(last));
      last.querySelector('.message-actions').append(regenerate);
    }
  }

  /** ‹ n/m ›: the answer's other versions (the ones a regenerate replaced), fetched when first asked for. */
  function alternativesNav(item, count) {
    const previous = navButton('‹', 'messages.previous');
    const label = element('span');
    const next = navButton('›', 'messages.next');
    const nav = element('span', { class: 'alternatives' }, previous, label, next);
    let versions = null; // oldest first, the current answer last
    let index = count;
    const show = () => {
      label.textContent = t('messages.answerOf', { index: index + 1, total: count + 1 });
      previous.disabled = index === 0;
      next.disabled = index === count;
      if (versions) {
        const shown = versions[index];
        renderMarkdown(item.querySelector('.message-body'), shown.content);
        item.querySelector('.message-status').textContent = shown.status === 'complete' ? '' : t(`status.${shown.status}`);
      }
    };
    const move = async step => {
      try {
        if (!versions) {
          const current = { id: item.dataset.id, content: item.querySelector('.message-body').aichatText, status: item.dataset.status };
          const answer = await request(`/api/v1/conversations/${conversation.id}/messages/${item.dataset.id}/alternatives`);
          versions = [...answer.alternatives.slice().sort((a, b) => a.created_at.localeCompare(b.created_at)), current];
        }
        index = Math.min(count, Math.max(0, index + step));
        show();
      } catch (error) {
        notifyError(error);
      }
    };
    previous.addEventListener('click', () => move(-1));
    next.addEventListener('click', () => move(1));
    show();
    return nav;
  }

  const navButton = (text, labelKey) => element('button', { type: 'button', class: 'icon-button', 'aria-label': t(labelKey) }, text);

  const nearEnd = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const scrollToEnd = () => { scroller.scrollTop = scroller.scrollHeight; };

  // ----- turns -----

  function sendMessage() {
    const content = input.value.trim();
    if (!content || !conversation || runningHere()) {
      return;
    }
    const target = conversation;
    list.querySelector('.empty-hint')?.remove();
    const now = new Date().toISOString();
    const userItem = messageItem({ id: '', role: 'user', content, status: 'complete', created_at: now });
    const answerItem = messageItem({ id: '', role: 'assistant', content: '', status: 'streaming', created_at: now });
    list.append(userItem, answerItem);
    scrollToEnd();
    input.value = '';
    const key = crypto.randomUUID();
    const start = () => request(`/api/v1/conversations/${target.id}/messages`, {
      method: 'POST', body: { content }, headers: { 'Idempotency-Key': key }, stream: true,
    });
    runTurn(target, start, { userItem, answerItem }).then(ok => {
      if (!ok) {
        // Refused before the turn began (busy, rate limited, budget): nothing was stored, so give the text back.
        userItem.remove();
        answerItem.remove();
        input.value = input.value || content;
      }
    });
  }

  function startRegenerate(answerItem) {
    if (!conversation || runningHere()) {
      return;
    }
    const target = conversation;
    const previous = { id: answerItem.dataset.id, alternatives: Number(answerItem.dataset.alternatives) };
    const start = () => request(`/api/v1/conversations/${target.id}/messages/${previous.id}/regenerate`, { method: 'POST', stream: true });
    const fresh = messageItem({ id: '', role: 'assistant', content: '', status: 'streaming', created_at: new Date().toISOString(), alternatives: previous.alternatives + 1 });
    answerItem.replaceWith(fresh);
    runTurn(target, start, { answerItem: fresh }).then(ok => {
      if (!ok) {
        fresh.replaceWith(answerItem);
        updateActions();
      }
    });
  }

  /**
   * Runs a turn's stream into the page: opens it with start(), then — whenever the connection drops before the turn
   * has ended — follows it again at GET /turns/{id}/events with Last-Event-ID, skipping any event already seen.
   * Resolves to false when the API refused the turn (nothing stored), true otherwise.
   */
  async function runTurn(target, start, items) {
    let lastId = 0;
    let ended = false;
    let attempt = 0;
    let connect = start;
    let frame = 0;
    let reconnectNotice = null;
    let completed = false;
    const visible = () => conversation?.id === target.id && turn.items.answerItem.isConnected;
    const turn = { id: null, items, text: '' };
    running.set(target.id, turn);
    showBusy();
    const paint = () => {
      frame = 0;
      if (visible()) {
        const stick = nearEnd();
        renderMarkdown(turn.items.answerItem.querySelector('.message-body'), turn.text);
        if (stick) {
          scrollToEnd();
        }
      }
    };
    try {
      while (!ended) {
        let response;
        try {
          response = await connect();
        } catch (error) {
          if (error.status === 0 || (error.status >= 502 && turn.id)) {
            await backoff(attempt++); // the network (or the gateway) is away: try the same request again
            continue;
          }
          if (error.status === 410 && turn.id) {
            break; // the events are gone (kept 24 h): the history has the outcome
          }
          notifyError(error);
          return turn.id !== null;
        }
        try {
          for await (const event of readEvents(response)) {
            const id = Number(event.id);
            if (id && id <= lastId) {
              continue; // replayed after a retry: already shown
            }
            lastId = id || lastId;
            attempt = 0;
            reconnectNotice?.remove();
            reconnectNotice = null;
            if (event.event === 'turn.started') {
              turn.id = event.data.turn_id;
              items.userItem && (items.userItem.dataset.id = event.data.user_message_id);
              items.answerItem.dataset.id = event.data.assistant_message_id;
              turn.answerId = event.data.assistant_message_id;
              showBusy();
            } else if (event.event === 'message.delta') {
              turn.text += event.data.text;
              frame ||= requestAnimationFrame(paint);
            } else if (event.event === 'memory.updated') {
              window.dispatchEvent(new CustomEvent('aichat:memory-updated', { detail: event.data }));
            } else if (event.event === 'usage') {
              window.dispatchEvent(new CustomEvent('aichat:usage', { detail: event.data }));
            } else if (event.event === 'turn.completed') {
              ended = true;
              completed = true;
              cancelAnimationFrame(frame);
              if (visible()) {
                update(turn.items.answerItem, { ...event.data.assistant_message, alternatives: Number(turn.items.answerItem.dataset.alternatives) });
              }
              window.dispatchEvent(new CustomEvent('aichat:turn-completed', { detail: event.data }));
            } else if (event.event === 'turn.failed') {
              ended = true;
              cancelAnimationFrame(frame);
              const status = event.data.code === 'cancelled' ? 'cancelled' : 'failed';
              if (visible()) {
                update(turn.items.answerItem, { id: turn.answerId, role: 'assistant', content: turn.text, status, created_at: new Date().toISOString(), alternatives: Number(turn.items.answerItem.dataset.alternatives) });
              }
              if (status === 'failed') {
                notify(describe(event.data));
              }
              window.dispatchEvent(new CustomEvent('aichat:turn-completed', { detail: event.data }));
            }
            if (TERMINAL.has(event.event)) {
              break;
            }
          }
        } catch (error) {
          if (error.name === 'AbortError') {
            throw error;
          }
          // the connection dropped mid-stream: resumed below
        }
        if (!ended) {
          reconnectNotice ??= notify(t('messages.reconnecting'), { kind: 'info', timeout: 60_000 });
          await backoff(attempt++);
          if (turn.id) {
            connect = () => request(`/api/v1/chat/turns/${turn.id}/events`, { stream: true, headers: lastId ? { 'Last-Event-ID': String(lastId) } : {} });
          }
        }
      }
      if (!ended && conversation?.id === target.id) {
        await open(conversation); // the events are gone: the history has the outcome
      }
      return true;
    } finally {
      reconnectNotice?.remove();
      const started = turn.id !== null;
      running.delete(target.id);
      showBusy();
      if (visible()) {
        updateActions();
      }
      if (started) {
        afterTurn(target, completed);
      }
    }
  }

  /**
   * The conversation's new place in the list, and — after a completed first exchange — its title once the API has
   * generated it (a short call that runs after the turn has ended).
   */
  async function afterTurn(target, completed) {
    try {
      let fresh = await request(`/api/v1/conversations/${target.id}`);
      conversations.touch(fresh);
      const deadline = Date.now() + 10_000;
      while (completed && !fresh.title && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 500));
        fresh = await request(`/api/v1/conversations/${target.id}`);
      }
      conversations.upsert(fresh);
      window.dispatchEvent(new CustomEvent('aichat:conversation-updated', { detail: fresh })); // its title call is billed too
      if (conversation?.id === fresh.id) {
        conversation = fresh;
        title.textContent = fresh.title || t('conversations.untitled');
      }
    } catch {
      // the list catches up at the next load
    }
  }

  const backoff = attempt => new Promise(resolve => setTimeout(resolve, Math.min(5_000, 300 * 2 ** attempt)));

  /** Stop instead of Send while the open conversation has a turn running (other conversations' turns do not count). */
  function showBusy() {
    const turn = runningHere();
    send.hidden = Boolean(turn);
    stop.hidden = !turn;
    stop.disabled = !turn?.id;
  }

  async function cancel() {
    const turn = runningHere();
    if (!turn?.id) {
      return;
    }
    try {
      await request(`/api/v1/chat/turns/${turn.id}/cancel`, { method: 'POST' });
    } catch (error) {
      if (error.code !== 'turn_already_finished') {
        notifyError(error);
      }
    }
  }

  // ----- the conversation's own actions -----

  async function rename() {
    const name = await askName(conversation.title ?? '');
    if (name === null) {
      return;
    }
    try {
      conversation = await request(`/api/v1/conversations/${conversation.id}`, { method: 'PATCH', body: { title: name } });
      conversations.upsert(conversation);
      title.textContent = conversation.title || t('conversations.untitled');
    } catch (error) {
      notifyError(error);
    }
  }

  async function remove() {
    const doomed = conversation;
    if (!(await confirm(t('conversations.confirmDelete', { title: doomed.title || t('conversations.untitled') })))) {
      return;
    }
    try {
      await request(`/api/v1/conversations/${doomed.id}`, { method: 'DELETE' });
      conversations.remove(doomed.id);
      const next = conversations.next(doomed.id);
      if (next) {
        location.hash = `#/c/${next.id}`;
      } else {
        await conversations.create();
      }
    } catch (error) {
      notifyError(error);
    }
  }

  async function changeModel() {
    const previous = conversation.model;
    try {
      conversation = await request(`/api/v1/conversations/${conversation.id}`, { method: 'PATCH', body: { model: modelSelect.value } });
      conversations.upsert(conversation);
    } catch (error) {
      modelSelect.value = previous;
      notifyError(error);
    }
  }

  composer.addEventListener('submit', event => {
    event.preventDefault();
    sendMessage();
  });
  input.addEventListener('keydown', event => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  stop.addEventListener('click', cancel);
  older.addEventListener('click', () => loadOlder().catch(notifyError));
  scroller.addEventListener('scroll', () => {
    if (scroller.scrollTop < 40 && nextCursor) {
      loadOlder().catch(() => {});
    }
  });
  document.getElementById('rename-conversation').addEventListener('click', rename);
  document.getElementById('delete-conversation').addEventListener('click', remove);
  modelSelect.addEventListener('change', changeModel);

  return {
    open: next => open(next).catch(notifyError),
    setModels(models) {
      modelSelect.replaceChildren(...models.map(model => new Option(model.name, model.id)));
      if (conversation) {
        modelSelect.value = conversation.model;
      }
    },
    reset() {
      conversation = null;
      generation += 1;
      list.replaceChildren();
      title.textContent = '';
      input.value = '';
    },
  };
}

