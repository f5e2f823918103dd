// Messages as Markdown, safely. marked turns Markdown into HTML; raw HTML in a message is shown as text (never
// parsed), images become links (nothing is fetched because a message says so), and DOMPurify sanitises the result
// so no script, event handler or javascript: URL can reach the page. Links open in a new tab with rel=noopener.
import { Marked } from '../vendor/marked.esm.js';
import DOMPurify from '../vendor/purify.es.mjs';

const escapeHtml = text => text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text, block }) => (block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text)),
    image: ({ href, text }) => `<a href="${escapeHtml(href ?? '')}">${escapeHtml(text || href || '')}</a>`,
  },
});

DOMPurify.addHook('afterSanitizeAttributes', node => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const POLICY = {
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'video', 'audio', 'source', 'picture'],
  FORBID_ATTR: ['style', 'class', 'id'],
  ALLOW_DATA_ATTR: false,
};

/** The sanitised HTML of a message's Markdown. */
export const toHtml = text => DOMPurify.sanitize(marked.parse(text ?? ''), POLICY);

/** Renders text into element as Markdown; keeps the raw text on the element (the tests compare it with the store). */
export function renderMarkdown(element, text) {
  element.innerHTML = toHtml(text);
  element.aichatText = text;
}
