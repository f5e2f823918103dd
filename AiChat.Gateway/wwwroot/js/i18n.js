// The client's text in English and Russian. Each module registers its own strings with addStrings; the language
// comes from the user's choice (kept in localStorage), else the browser's languages, else English.

const STORAGE_KEY = 'aichat.language';
export const LANGUAGES = { en: 'English', ru: 'Русский' };

const strings = { en: {}, ru: {} };
let language = initialLanguage();

function initialLanguage() {
  const chosen = localStorage.getItem(STORAGE_KEY);
  if (chosen in LANGUAGES) {
    return chosen;
  }
  const preferred = (navigator.languages ?? [navigator.language]).map(tag => tag.toLowerCase().split('-')[0]);
  return preferred.find(tag => tag in LANGUAGES) ?? 'en';
}

export function addStrings(table) {
  for (const [lang, entries] of Object.entries(table)) {
    Object.assign(strings[lang] ??= {}, entries);
  }
}

export const getLanguage = () => language;

/** The text for key with {name} placeholders filled; a key with .one/.few/.many/.other forms is chosen by params.count. */
export function t(key, params = {}) {
  let entry = key;
  if (typeof params.count === 'number') {
    const form = new Intl.PluralRules(language).select(params.count);
    entry = [`${key}.${form}`, `${key}.other`].find(candidate => lookup(candidate) !== undefined) ?? key;
  }
  const text = lookup(entry) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

const lookup = key => strings[language]?.[key] ?? strings.en[key];

export function setLanguage(next) {
  if (!(next in LANGUAGES) || next === language) {
    return;
  }
  language = next;
  localStorage.setItem(STORAGE_KEY, next);
  translate(document);
  window.dispatchEvent(new CustomEvent('aichat:language', { detail: next }));
}

/** Fills every element marked with data-i18n (text), -placeholder, -label (aria-label) or -title under root. */
export function translate(root) {
  document.documentElement.lang = language;
  for (const element of root.querySelectorAll('[data-i18n]')) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll('[data-i18n-placeholder]')) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  for (const element of root.querySelectorAll('[data-i18n-label]')) {
    element.setAttribute('aria-label', t(element.dataset.i18nLabel));
  }
  for (const element of root.querySelectorAll('[data-i18n-title]')) {
    element.title = t(element.dataset.i18nTitle);
  }
}

export const formatDateTime = value => new Intl.DateTimeFormat(language, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(value));
export const formatDate = value => new Intl.DateTimeFormat(language, { dateStyle: 'medium' }).format(new Date(value));
export const formatUsd = (value, digits = 4) => new Intl.NumberFormat(language, { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: digits }).format(value);
export const formatNumber = value => new Intl.NumberFormat(language).format(value);

addStrings({
  en: {
    language: 'Language',
    cancel: 'Cancel',
    save: 'Save',
    confirm: 'Confirm',
    close: 'Close',
    'auth.lead': 'Your personal assistant, with a memory of its own.',
    'auth.login': 'Log in',
    'auth.register': 'Create account',
    'auth.logout': 'Log out',
    'auth.name': 'Name (optional)',
    'auth.email': 'Email',
    'auth.password': 'Password',
    'auth.expired': 'Your session ended. Please log in again.',
    'offline.notice': 'Offline model: replies are canned, no AI provider is configured.',
    'memory.open': 'Memory',
    'memory.title': 'What I know about you',
    'budget.title': 'Budget and usage',
    'conversations.title': 'Conversations',
    'conversations.toggle': 'Show conversations',
    'conversations.new': 'New chat',
    'conversations.more': 'Show more',
    'conversations.rename': 'Rename',
    'conversations.delete': 'Delete',
    'conversations.titleLabel': 'Title',
    'conversations.untitled': 'New conversation',
    'conversations.confirmDelete': 'Delete “{title}” and all its messages? What your assistant has learnt stays in its memory.',
    'conversations.messages.one': '{count} message',
    'conversations.messages.other': '{count} messages',
    'search.label': 'Search all conversations',
    'search.placeholder': 'Search conversations…',
    'search.results': 'Search results',
    'search.clear': 'Clear',
    'search.none': 'Nothing found.',
    'models.label': 'Model',
    'messages.label': 'Messages',
    'messages.older': 'Show older messages',
    'messages.empty': 'Say hello. Your assistant remembers what you tell it across all your chats.',
    'messages.you': 'You',
    'messages.assistant': 'Assistant',
    'messages.regenerate': 'Regenerate',
    'messages.previous': 'Previous answer',
    'messages.next': 'Next answer',
    'messages.answerOf': 'Answer {index} of {total}',
    'messages.copy': 'Copy',
    'messages.reconnecting': 'Connection lost, reconnecting…',
    'status.streaming': 'Writing…',
    'status.failed': 'Failed',
    'status.cancelled': 'Stopped',
    'composer.label': 'Message',
    'composer.placeholder': 'Message your assistant (Enter to send, Shift+Enter for a new line)',
    'composer.send': 'Send',
    'composer.stop': 'Stop',
    'error.budget_exceeded': 'Your budget for this period is used up. It resets on {resets}.',
    'error.budget_exceeded.plain': 'Your budget for this period is used up.',
    'error.rate_limited': 'You are sending messages too quickly. Try again in {seconds} s.',
    'error.too_many_streams': 'Too many replies are open at once. Close a tab or wait a moment.',
    'error.too_many_turns': 'Your assistant is already answering in other chats. Try again in a moment.',
    'error.conversation_busy': 'Your assistant is still answering in this chat. Wait for it to finish or stop it.',
    'error.agent_busy': 'Your assistant is still answering in this chat. Wait for it to finish or stop it.',
    'error.server_busy': 'The server is busy. Try again in {seconds} s.',
    'error.cancelled': 'You stopped this reply.',
    'error.message_too_long': 'The message is too long.',
    'error.invalid_credentials': 'The email or password is wrong.',
    'error.user_already_exists': 'An account with this email already exists. Log in instead.',
    'error.weak_password': 'Choose a longer password (at least 8 characters).',
    'error.over_request_rate_limit': 'Too many attempts. Try again in {seconds} s.',
    'error.validation_failed': 'Please check the form: {detail}',
    'error.network': 'Cannot reach AiChat. Check your connection.',
    'error.llm': 'The AI provider did not answer. Try again.',
    'error.generic': 'Something went wrong: {detail}',
  },
  ru: {
    language: 'Язык',
    cancel: 'Отмена',
    save: 'Сохранить',
    confirm: 'Подтвердить',
    close: 'Закрыть',
    'auth.lead': 'Ваш личный ассистент с собственной памятью.',
    'auth.login': 'Войти',
    'auth.register': 'Создать аккаунт',
    'auth.logout': 'Выйти',
    'auth.name': 'Имя (необязательно)',
    'auth.email': 'Эл. почта',
    'auth.password': 'Пароль',
    'auth.expired': 'Сеанс завершён. Войдите снова.',
    'offline.notice': 'Офлайн-модель: ответы шаблонные, ИИ-провайдер не настроен.',
    'memory.open': 'Память',
    'memory.title': 'Что я о вас знаю',
    'budget.title': 'Бюджет и расходы',
    'conversations.title': 'Чаты',
    'conversations.toggle': 'Показать чаты',
    'conversations.new': 'Новый чат',
    'conversations.more': 'Показать ещё',
    'conversations.rename': 'Переименовать',
    'conversations.delete': 'Удалить',
    'conversations.titleLabel': 'Название',
    'conversations.untitled': 'Новый чат',
    'conversations.confirmDelete': 'Удалить «{title}» со всеми сообщениями? То, что ассистент узнал, останется в его памяти.',
    'conversations.messages.one': '{count} сообщение',
    'conversations.messages.few': '{count} сообщения',
    'conversations.messages.many': '{count} сообщений',
    'conversations.messages.other': '{count} сообщения',
    'search.label': 'Поиск по всем чатам',
    'search.placeholder': 'Поиск по чатам…',
    'search.results': 'Результаты поиска',
    'search.clear': 'Очистить',
    'search.none': 'Ничего не найдено.',
    'models.label': 'Модель',
    'messages.label': 'Сообщения',
    'messages.older': 'Показать более ранние',
    'messages.empty': 'Поздоровайтесь. Ассистент помнит, что вы ему рассказали, во всех ваших чатах.',
    'messages.you': 'Вы',
    'messages.assistant': 'Ассистент',
    'messages.regenerate': 'Ответить заново',
    'messages.previous': 'Предыдущий ответ',
    'messages.next': 'Следующий ответ',
    'messages.answerOf': 'Ответ {index} из {total}',
    'messages.copy': 'Копировать',
    'messages.reconnecting': 'Связь потеряна, переподключаемся…',
    'status.streaming': 'Пишет…',
    'status.failed': 'Ошибка',
    'status.cancelled': 'Остановлено',
    'composer.label': 'Сообщение',
    'composer.placeholder': 'Напишите ассистенту (Enter — отправить, Shift+Enter — новая строка)',
    'composer.send': 'Отправить',
    'composer.stop': 'Стоп',
    'error.budget_exceeded': 'Бюджет на этот период исчерпан. Он обновится {resets}.',
    'error.budget_exceeded.plain': 'Бюджет на этот период исчерпан.',
    'error.rate_limited': 'Слишком много сообщений подряд. Попробуйте через {seconds} с.',
    'error.too_many_streams': 'Открыто слишком много ответов. Закройте вкладку или подождите.',
    'error.too_many_turns': 'Ассистент уже отвечает в других чатах. Попробуйте чуть позже.',
    'error.conversation_busy': 'Ассистент ещё отвечает в этом чате. Дождитесь ответа или остановите его.',
    'error.agent_busy': 'Ассистент ещё отвечает в этом чате. Дождитесь ответа или остановите его.',
    'error.server_busy': 'Сервер перегружен. Попробуйте через {seconds} с.',
    'error.cancelled': 'Вы остановили этот ответ.',
    'error.message_too_long': 'Сообщение слишком длинное.',
    'error.invalid_credentials': 'Неверная почта или пароль.',
    'error.user_already_exists': 'Аккаунт с этой почтой уже есть. Войдите.',
    'error.weak_password': 'Выберите пароль подлиннее (не меньше 8 символов).',
    'error.over_request_rate_limit': 'Слишком много попыток. Попробуйте через {seconds} с.',
    'error.validation_failed': 'Проверьте форму: {detail}',
    'error.network': 'Нет связи с AiChat. Проверьте подключение.',
    'error.llm': 'ИИ-провайдер не ответил. Попробуйте ещё раз.',
    'error.generic': 'Что-то пошло не так: {detail}',
  },
});
