// The memory panel: the agent's core blocks (editable, with their limits), the log of what changed in them and where
// it was learnt (with revert), and the archival passages (searchable, deletable). Everything the API says is shown as
// text (textContent), never as markup.
import { request } from './api.js';
import { addStrings, t, translate, formatDateTime, formatNumber } from './i18n.js';
import { notify, notifyError, describe } from './notices.js';
import { diffLines, fillTemplate, element } from './dom.js';

const CHANGES_PAGE = 20;
const ARCHIVAL_PAGE = 50;
const KNOWN_BLOCKS = ['persona', 'human'];

const dialog = document.getElementById('memory-dialog');
const body = document.getElementById('memory-body');

/** What the panel shows; dropped whole on sign-out so the next user never sees it. */
let state = emptyState();
let ui;
let askConfirm;

// An answer is shown only if no later load of its section began and nobody signed out meanwhile: loads interleave.
let session = 0;
const latest = { blocks: 0, changes: 0, passages: 0 };
function ticket(section) {
  const mine = { session, number: ++latest[section] };
  return () => mine.session === session && mine.number === latest[section];
}

function emptyState() {
  return {
    blocks: [],            // [{label, value, limit, description, updated_at}] as last read
    editors: new Map(),    // label → the block's editor (its textarea keeps what the user typed)
    changes: [],
    nextCursor: null,
    passages: [],
    passageCount: 0,
    query: '',
    titles: new Map(),     // conversation id → Promise of its title (null: deleted)
  };
}

/** Builds the panel once; `confirm` asks a yes/no question in the app's confirm dialog. */
export function initMemory({ confirm } = {}) {
  askConfirm = confirm ?? (async () => true);
  ui = buildPanel();
  body.replaceChildren(ui.root);
  translate(ui.root);

  document.getElementById('memory-button').addEventListener('click', () => {
    dialog.showModal();
    selectTab(ui.activeTab, { focus: true });
    state.titles.clear(); // a conversation may have been renamed or deleted since
    refresh();
  });
  window.addEventListener('aichat:signed-out', () => {
    session++;
    state = emptyState();
    ui.blockList.replaceChildren();
    dialog.close();
    renderBlocks();
    renderChanges();
    renderPassages();
    ui.search.value = '';
  });
  // A turn that changed memory (a block by memory.updated; archival has no event, so any turn's end) while it is open.
  window.addEventListener('aichat:memory-updated', () => dialog.open && refresh());
  window.addEventListener('aichat:turn-completed', () => dialog.open && refresh());
  // A conversation named after its first turn: the links to it say its new title.
  window.addEventListener('aichat:conversation-updated', event => {
    if (event.detail?.id && state.titles.has(event.detail.id)) {
      state.titles.set(event.detail.id, Promise.resolve(event.detail.title ?? ''));
      renderChanges();
      renderPassages();
    }
  });
  window.addEventListener('aichat:language', () => {
    translate(ui.root);
    state.editors.forEach(editor => editor.paint());
    renderChanges();
    renderPassages();
  });
}

function refresh() {
  loadBlocks();
  loadChanges();
  loadPassages();
}

// ----- the panel's frame: three tabs -----

function buildPanel() {
  const tabs = element('div', { class: 'memory-tabs', role: 'tablist', 'data-i18n-label': 'memory.sections' });
  const root = element('div', { class: 'memory-panel' }, tabs);
  const sections = {};
  for (const name of ['blocks', 'changes', 'archival']) {
    const tab = element('button', {
      type: 'button', role: 'tab', id: `memory-tab-${name}`, 'aria-controls': `memory-section-${name}`, 'data-i18n': `memory.tab.${name}`,
    });
    const heading = element('h3', { class: 'sr-only', 'data-i18n': `memory.tab.${name}` });
    const lead = element('p', { class: 'panel-lead', 'data-i18n': `memory.${name}.lead` });
    const section = element('section', { id: `memory-section-${name}`, role: 'tabpanel', 'aria-labelledby': `memory-tab-${name}`, class: 'memory-section' }, heading, lead);
    tab.addEventListener('click', () => selectTab(name));
    tab.addEventListener('keydown', event => moveBetweenTabs(event, name));
    tabs.append(tab);
    root.append(section);
    sections[name] = { tab, section };
  }

  const blockList = element('div', { class: 'block-list' });
  const blocksStatus = element('p', { class: 'empty', role: 'status' });
  sections.blocks.section.append(blocksStatus, blockList);

  const changeList = element('ol', { class: 'change-list' });
  const changesStatus = element('p', { class: 'empty', role: 'status' });
  const more = element('button', { type: 'button', class: 'link', hidden: '', 'data-i18n': 'memory.more' });
  more.addEventListener('click', () => loadChanges({ more: true }));
  sections.changes.section.append(changesStatus, changeList, more);

  const search = element('input', { id: 'memory-archival-query', type: 'search', autocomplete: 'off', maxlength: '500', 'data-i18n-placeholder': 'memory.archival.placeholder' });
  const searchForm = element('form', { class: 'archival-search', role: 'search' },
    element('label', { for: 'memory-archival-query', class: 'sr-only', 'data-i18n': 'memory.archival.search' }),
    search,
    element('button', { type: 'submit', 'data-i18n': 'memory.archival.searchButton' }));
  searchForm.addEventListener('submit', event => {
    event.preventDefault();
    state.query = search.value.trim();
    loadPassages();
  });
  // The field's own clear button (×) empties it: show everything again.
  search.addEventListener('search', () => {
    if (!search.value && state.query) {
      state.query = '';
      loadPassages();
    }
  });
  const passageCount = element('p', { class: 'archival-count', role: 'status' });
  const passageList = element('ul', { class: 'passage-list' });
  sections.archival.section.append(searchForm, passageCount, passageList);

  return { root, sections, activeTab: 'blocks', blockList, blocksStatus, changeList, changesStatus, more, search, passageCount, passageList };
}

function selectTab(name, { focus = false } = {}) {
  ui.activeTab = name;
  for (const [key, { tab, section }] of Object.entries(ui.sections)) {
    tab.setAttribute('aria-selected', String(key === name));
    section.hidden = key !== name;
  }
  if (focus) {
    ui.sections[name].tab.focus();
  }
}

// Arrow keys, Home and End move between the tabs as the ARIA tabs pattern has it; Tab still reaches each of them.
function moveBetweenTabs(event, name) {
  const names = Object.keys(ui.sections);
  const index = names.indexOf(name);
  const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: names.length - 1 }[event.key];
  if (next === undefined) {
    return;
  }
  event.preventDefault();
  selectTab(names[(next + names.length) % names.length], { focus: true });
}

// ----- core blocks -----

async function loadBlocks() {
  const current = ticket('blocks');
  try {
    const memory = await request('/api/v1/agent/memory');
    if (current()) {
      state.blocks = memory.blocks;
      renderBlocks();
    }
  } catch (error) {
    if (current()) {
      showStatus(ui.blocksStatus, describe(error));
    }
  }
}

function showStatus(status, text) {
  status.textContent = text;
  status.hidden = !text;
}

function renderBlocks() {
  const labels = new Set(state.blocks.map(block => block.label));
  for (const [label, editor] of state.editors) {
    if (!labels.has(label)) {
      editor.root.remove();
      state.editors.delete(label);
    }
  }
  const wanted = state.blocks.map(block => {
    let editor = state.editors.get(block.label);
    if (!editor) {
      editor = blockEditor(block);
      state.editors.set(block.label, editor);
      translate(editor.root);
    }
    editor.show(block);
    return editor.root;
  });
  // Moved only when the order changed: moving a node takes the focus (and the caret) out of its textarea.
  if (wanted.length !== ui.blockList.children.length || wanted.some((node, index) => ui.blockList.children[index] !== node)) {
    ui.blockList.replaceChildren(...wanted);
  }
  showStatus(ui.blocksStatus, '');
}

const blockName = label => (KNOWN_BLOCKS.includes(label) ? t(`memory.block.${label}`) : label);
const blockDescription = block => (KNOWN_BLOCKS.includes(block.label) ? t(`memory.block.${block.label}.description`) : (block.description ?? ''));

/** One block's editor: its textarea keeps the user's edit across refreshes until it is saved or matches again. */
function blockEditor(initial) {
  const id = `memory-block-${initial.label.replace(/[^\w-]/g, '_')}`;
  let block = initial;
  const name = element('label', { for: id, class: 'block-name' });
  const raw = element('code', { class: 'block-label' });
  const description = element('p', { class: 'block-description', id: `${id}-description` });
  const textarea = element('textarea', { id, rows: '4', spellcheck: 'true', 'aria-describedby': `${id}-description ${id}-counter ${id}-error` });
  textarea.value = initial.value;
  const counter = element('span', { class: 'block-counter', id: `${id}-counter` });
  const error = element('p', { class: 'block-error form-error', id: `${id}-error`, role: 'alert' });
  const updated = element('span', { class: 'block-updated' });
  const save = element('button', { type: 'button', class: 'primary', 'data-i18n': 'save' });
  const undo = element('button', { type: 'button', class: 'ghost', 'data-i18n': 'memory.undo' });
  const root = element('section', { class: 'memory-block', 'data-label': initial.label },
    element('div', { class: 'block-head' }, name, raw),
    description,
    textarea,
    element('div', { class: 'block-foot' }, counter, updated, element('span', { class: 'spacer' }), undo, save),
    error);

  let refusal = '';
  const dirty = () => textarea.value !== block.value;
  const over = () => textarea.value.length - block.limit;

  function paint() {
    name.textContent = blockName(block.label);
    raw.textContent = block.label;
    raw.hidden = !KNOWN_BLOCKS.includes(block.label);
    description.textContent = blockDescription(block);
    const length = textarea.value.length; // UTF-16 code units, as the API counts
    counter.textContent = t('memory.counter', { count: formatNumber(length), limit: formatNumber(block.limit) });
    counter.setAttribute('aria-label', t('memory.counter.label', { count: formatNumber(length), limit: formatNumber(block.limit) }));
    counter.classList.toggle('over', over() > 0);
    updated.textContent = t('memory.updatedAt', { when: formatDateTime(block.updated_at) });
    const excess = over();
    error.textContent = excess > 0 ? t('memory.overLimit', { count: excess }) : refusal;
    error.hidden = !error.textContent;
    textarea.setAttribute('aria-invalid', String(excess > 0));
    save.disabled = !dirty() || excess > 0;
    undo.hidden = !dirty();
  }

  textarea.addEventListener('input', () => {
    refusal = '';
    paint();
  });
  undo.addEventListener('click', () => {
    textarea.value = block.value;
    refusal = '';
    paint();
    textarea.focus();
  });
  save.addEventListener('click', async () => {
    if (save.disabled) {
      return;
    }
    const value = textarea.value;
    save.disabled = true;
    try {
      const memory = await request('/api/v1/agent/memory', { method: 'POST', body: { blocks: [{ label: block.label, value }] } });
      latest.blocks++; // this answer is newer than any load still on its way
      state.blocks = memory.blocks;
      renderBlocks();
      notify(t('memory.saved', { label: blockName(block.label) }), { kind: 'info' });
      loadChanges();
    } catch (failure) {
      refusal = failure.code === 'memory_limit_exceeded'
        ? t('memory.limitRefused', { limit: formatNumber(failure.problem.limit ?? block.limit), requested: formatNumber(failure.problem.requested ?? value.length) })
        : describe(failure);
      paint();
    }
  });

  return {
    root,
    paint,
    show(next) {
      const keepEdit = dirty();
      block = next;
      if (!keepEdit) {
        textarea.value = next.value;
      }
      paint();
    },
  };
}

// ----- the change log -----

async function loadChanges({ more = false } = {}) {
  const current = ticket('changes');
  const cursor = more ? state.nextCursor : null;
  ui.more.disabled = true;
  try {
    const query = new URLSearchParams({ limit: String(CHANGES_PAGE) });
    if (cursor) {
      query.set('before', cursor);
    }
    const page = await request(`/api/v1/agent/memory/changes?${query}`);
    if (current()) {
      state.changes = more ? [...state.changes, ...page.changes] : page.changes;
      state.nextCursor = page.next_cursor;
      renderChanges();
    }
  } catch (error) {
    if (current()) {
      showStatus(ui.changesStatus, describe(error));
    }
  } finally {
    ui.more.disabled = false;
  }
}

function renderChanges() {
  ui.changeList.replaceChildren(...state.changes.map(changeItem));
  showStatus(ui.changesStatus, state.changes.length ? '' : t('memory.changes.none'));
  ui.more.hidden = !state.nextCursor;
}

function changeItem(change) {
  const when = element('time', { datetime: change.created_at }, formatDateTime(change.created_at));
  const revert = element('button', { type: 'button', class: 'ghost change-revert' }, t('memory.revert'));
  revert.setAttribute('aria-label', t('memory.revert.label', { label: blockName(change.label), when: formatDateTime(change.created_at) }));
  revert.addEventListener('click', () => revertChange(change, revert));
  return element('li', { class: 'change', 'data-id': change.id, 'data-kind': change.source.kind },
    element('div', { class: 'change-head' },
      element('strong', { class: 'change-block' }, blockName(change.label)),
      when),
    element('p', { class: 'change-source' }, ...sourceOf(change.source)),
    diffView(change.old_value, change.new_value),
    element('div', { class: 'change-actions' }, revert));
}

/** Who changed it, in plain words; a change made in a conversation links to it, under its current title. */
function sourceOf(source) {
  switch (source.kind) {
    case 'tool': {
      if (!source.conversation_id) {
        return [t('memory.source.toolSomewhere')];
      }
      return fillTemplate(t('memory.source.tool', { conversation: '{conversation}' }), { conversation: conversationLink(source.conversation_id, 'memory.source') });
    }
    case 'user':
      return [t('memory.source.user')];
    case 'revert':
      return [t('memory.source.revert')];
    case 'mcp':
      return [t('memory.source.mcp')];
    default:
      return [t('memory.source.other', { kind: source.kind })];
  }
}

/**
 * A link to the conversation under its title, phrased by `keys` (.named, .deleted, .conversation while the title loads):
 * a deleted conversation is said so, without a link. Following the link closes the panel on that conversation.
 */
function conversationLink(id, keys) {
  const link = element('a', { href: `#/c/${id}`, class: 'conversation-ref' }, t(`${keys}.conversation`));
  link.addEventListener('click', () => dialog.close());
  titleOf(id).then(title => {
    if (title === null) {
      link.replaceWith(element('span', { class: 'conversation-ref deleted' }, t(`${keys}.deleted`)));
    } else {
      link.textContent = t(`${keys}.named`, { title: title || t('conversations.untitled') });
    }
  });
  return link;
}

/** A conversation's title (empty when untitled), or null when it was deleted; asked once per conversation. */
function titleOf(id) {
  if (!state.titles.has(id)) {
    state.titles.set(id, request(`/api/v1/conversations/${id}`)
      .then(conversation => conversation.title ?? '')
      .catch(error => (error.status === 404 ? null : '')));
  }
  return state.titles.get(id);
}

/** What the change added and removed, line by line (blocks are short lists of facts, one a line). */
function diffView(before, after) {
  const list = element('ul', { class: 'change-diff' });
  const parts = diffLines(before, after).filter(part => part.kind !== 'same');
  for (const part of parts) {
    const word = part.kind === 'added' ? 'memory.change.added' : 'memory.change.removed';
    const tag = part.kind === 'added' ? 'ins' : 'del';
    list.append(element('li', { class: `diff-${part.kind}` },
      element('span', { class: 'diff-sign' }, t(word)),
      element(tag, {}, part.text || t('memory.change.blankLine'))));
  }
  if (!parts.length) {
    list.append(element('li', { class: 'diff-same' }, t('memory.change.nothing')));
  }
  return list;
}

async function revertChange(change, button) {
  button.disabled = true;
  try {
    const memory = await request(`/api/v1/agent/memory/changes/${change.id}/revert`, { method: 'POST' });
    latest.blocks++;
    state.blocks = memory.blocks;
    renderBlocks();
    notify(t('memory.reverted', { label: blockName(change.label) }), { kind: 'info' });
    await loadChanges();
    ui.sections.changes.tab.focus(); // the button pressed was replaced with the list: keep the keyboard in the panel
  } catch (error) {
    notifyError(error);
    button.disabled = false;
  }
}

// ----- archival passages -----

async function loadPassages() {
  const current = ticket('passages');
  const params = new URLSearchParams({ limit: String(ARCHIVAL_PAGE) });
  if (state.query) {
    params.set('query', state.query);
  }
  try {
    const page = await request(`/api/v1/agent/memory/archival?${params}`);
    if (current()) {
      state.passages = page.passages;
      state.passageCount = page.count;
      renderPassages();
    }
  } catch (error) {
    if (current()) {
      ui.passageCount.textContent = describe(error);
    }
  }
}

function renderPassages() {
  ui.passageList.replaceChildren(...state.passages.map(passageItem));
  if (state.query) {
    ui.passageCount.textContent = state.passages.length
      ? t('memory.archival.found', { count: state.passages.length, query: state.query })
      : t('memory.archival.noMatch', { query: state.query });
  } else {
    ui.passageCount.textContent = state.passageCount ? t('memory.archival.count', { count: state.passageCount }) : t('memory.archival.none');
  }
}

function passageItem(passage) {
  const remove = element('button', { type: 'button', class: 'ghost danger' }, t('memory.archival.delete'));
  remove.setAttribute('aria-label', t('memory.archival.delete.label', { text: preview(passage.content) }));
  remove.addEventListener('click', () => deletePassage(passage, remove));
  const meta = element('p', { class: 'passage-meta' }, element('time', { datetime: passage.created_at }, formatDateTime(passage.created_at)));
  if (passage.conversation_id) {
    meta.append(' · ', ...fillTemplate(t('memory.archival.from', { conversation: '{conversation}' }), { conversation: conversationLink(passage.conversation_id, 'memory.archival.source') }));
  }
  return element('li', { class: 'passage', 'data-id': passage.id },
    element('p', { class: 'passage-content' }, passage.content),
    element('div', { class: 'passage-foot' }, meta, remove));
}

const preview = text => (text.length > 80 ? `${text.slice(0, 79)}…` : text);

async function deletePassage(passage, button) {
  if (!(await askConfirm(t('memory.archival.confirmDelete', { text: preview(passage.content) })))) {
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    await request(`/api/v1/agent/memory/archival/${encodeURIComponent(passage.id)}`, { method: 'DELETE' });
    notify(t('memory.archival.deleted'), { kind: 'info' });
  } catch (error) {
    if (error.status !== 404) { // already gone: the list below no longer has it either
      notifyError(error);
      button.disabled = false;
      return;
    }
  }
  await loadPassages();
  ui.search.focus();
}

addStrings({
  en: {
    'memory.sections': 'Memory sections',
    'memory.tab.blocks': 'Core memory',
    'memory.tab.changes': 'What I learnt',
    'memory.tab.archival': 'Long-term notes',
    'memory.blocks.lead': 'I read these in every chat. Edit them to correct me.',
    'memory.changes.lead': 'Every change to my core memory, newest first. Revert one to put the text back as it was before.',
    'memory.archival.lead': 'Things you asked me to remember. I search them when they matter.',
    'memory.loading': 'Loading…',
    'memory.block.persona': 'About me (your assistant)',
    'memory.block.human': 'About you',
    'memory.block.persona.description': 'Who I am and how I behave.',
    'memory.block.human.description': 'What I know about you.',
    'memory.counter': '{count} / {limit}',
    'memory.counter.label': '{count} of at most {limit} characters',
    'memory.overLimit.one': '{count} character over the limit: shorten the text to save it.',
    'memory.overLimit.other': '{count} characters over the limit: shorten the text to save it.',
    'memory.limitRefused': 'Not saved: this block holds at most {limit} characters and the text has {requested}.',
    'memory.updatedAt': 'Changed {when}',
    'memory.undo': 'Undo edits',
    'memory.saved': '“{label}” saved.',
    'memory.changes.none': 'Nothing has changed yet.',
    'memory.more': 'Show more',
    'memory.revert': 'Revert',
    'memory.revert.label': 'Revert the change to “{label}” of {when}',
    'memory.reverted': '“{label}” is back as it was before that change.',
    'memory.change.added': 'Added',
    'memory.change.removed': 'Removed',
    'memory.change.blankLine': '(an empty line)',
    'memory.change.nothing': 'The text stayed the same.',
    'memory.source.tool': 'I learnt this in {conversation}.',
    'memory.source.toolSomewhere': 'I learnt this in a chat.',
    'memory.source.conversation': 'a chat',
    'memory.source.named': 'the chat “{title}”',
    'memory.source.deleted': 'a deleted conversation',
    'memory.source.user': 'You edited this.',
    'memory.source.revert': 'You reverted an earlier change.',
    'memory.source.mcp': 'A connected app (MCP) changed this.',
    'memory.source.other': 'Changed by {kind}.',
    'memory.archival.search': 'Search the notes',
    'memory.archival.placeholder': 'Search the notes…',
    'memory.archival.searchButton': 'Search',
    'memory.archival.count.one': '{count} note',
    'memory.archival.count.other': '{count} notes',
    'memory.archival.found.one': '{count} note for “{query}”',
    'memory.archival.found.other': '{count} notes for “{query}”',
    'memory.archival.none': 'No notes yet. Say “remember that …” in a chat.',
    'memory.archival.noMatch': 'No note matches “{query}”.',
    'memory.archival.from': 'from {conversation}',
    'memory.archival.source.conversation': 'a chat',
    'memory.archival.source.named': 'the chat “{title}”',
    'memory.archival.source.deleted': 'a deleted conversation',
    'memory.archival.delete': 'Delete',
    'memory.archival.delete.label': 'Delete the note “{text}”',
    'memory.archival.confirmDelete': 'Delete this note for good? “{text}”',
    'memory.archival.deleted': 'Note deleted.',
  },
  ru: {
    'memory.sections': 'Разделы памяти',
    'memory.tab.blocks': 'Основная память',
    'memory.tab.changes': 'Что я узнал',
    'memory.tab.archival': 'Долгие заметки',
    'memory.blocks.lead': 'Это я читаю в каждом чате. Исправьте, если я что-то понял не так.',
    'memory.changes.lead': 'Все изменения основной памяти, сначала новые. Отмените изменение, чтобы вернуть прежний текст.',
    'memory.archival.lead': 'То, что вы просили запомнить. Я ищу здесь, когда это нужно.',
    'memory.loading': 'Загрузка…',
    'memory.block.persona': 'Обо мне (ассистенте)',
    'memory.block.human': 'О вас',
    'memory.block.persona.description': 'Кто я и как себя веду.',
    'memory.block.human.description': 'Что я о вас знаю.',
    'memory.counter': '{count} / {limit}',
    'memory.counter.label': '{count} из не более чем {limit} символов',
    'memory.overLimit.one': 'На {count} символ больше лимита: сократите текст, чтобы сохранить.',
    'memory.overLimit.few': 'На {count} символа больше лимита: сократите текст, чтобы сохранить.',
    'memory.overLimit.many': 'На {count} символов больше лимита: сократите текст, чтобы сохранить.',
    'memory.overLimit.other': 'На {count} символа больше лимита: сократите текст, чтобы сохранить.',
    'memory.limitRefused': 'Не сохранено: в этом блоке не больше {limit} символов, а в тексте {requested}.',
    'memory.updatedAt': 'Изменено {when}',
    'memory.undo': 'Отменить правку',
    'memory.saved': '«{label}» сохранено.',
    'memory.changes.none': 'Пока ничего не менялось.',
    'memory.more': 'Показать ещё',
    'memory.revert': 'Отменить',
    'memory.revert.label': 'Отменить изменение «{label}» от {when}',
    'memory.reverted': '«{label}» снова такой, как до этого изменения.',
    'memory.change.added': 'Добавлено',
    'memory.change.removed': 'Удалено',
    'memory.change.blankLine': '(пустая строка)',
    'memory.change.nothing': 'Текст не изменился.',
    'memory.source.tool': 'Я узнал это в {conversation}.',
    'memory.source.toolSomewhere': 'Я узнал это в одном из чатов.',
    'memory.source.conversation': 'одном из чатов',
    'memory.source.named': 'чате «{title}»',
    'memory.source.deleted': 'чате, который потом удалили',
    'memory.source.user': 'Это изменили вы.',
    'memory.source.revert': 'Вы отменили прежнее изменение.',
    'memory.source.mcp': 'Это изменило подключённое приложение (MCP).',
    'memory.source.other': 'Изменено: {kind}.',
    'memory.archival.search': 'Поиск по заметкам',
    'memory.archival.placeholder': 'Поиск по заметкам…',
    'memory.archival.searchButton': 'Найти',
    'memory.archival.count.one': '{count} заметка',
    'memory.archival.count.few': '{count} заметки',
    'memory.archival.count.many': '{count} заметок',
    'memory.archival.count.other': '{count} заметки',
    'memory.archival.found.one': 'По запросу «{query}» — {count} заметка',
    'memory.archival.found.few': 'По запросу «{query}» — {count} заметки',
    'memory.archival.found.many': 'По запросу «{query}» — {count} заметок',
    'memory.archival.found.other': 'По запросу «{query}» — {count} заметки',
    'memory.archival.none': 'Заметок пока нет. Скажите в чате «запомни, что …».',
    'memory.archival.noMatch': 'По запросу «{query}» ничего нет.',
    'memory.archival.from': 'из {conversation}',
    'memory.archival.source.conversation': 'одного из чатов',
    'memory.archival.source.named': 'чата «{title}»',
    'memory.archival.source.deleted': 'чата, который потом удалили',
    'memory.archival.delete': 'Удалить',
    'memory.archival.delete.label': 'Удалить заметку «{text}»',
    'memory.archival.confirmDelete': 'Удалить эту заметку навсегда? «{text}»',
    'memory.archival.deleted': 'Заметка удалена.',
  },
});
