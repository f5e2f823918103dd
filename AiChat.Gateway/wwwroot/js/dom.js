// Small DOM helpers shared by the client: elements built from attributes and text (never markup),
// sentences with an element in them, and a line diff.

const SVG = 'http://www.w3.org/2000/svg';

function build(node, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value !== null && value !== undefined && value !== false) {
      node.setAttribute(name, value === true ? '' : String(value));
    }
  }
  node.append(...children.filter(child => child !== null && child !== undefined));
  return node;
}

/** An HTML element; strings among the children become text nodes. */
export const element = (tag, attributes, ...children) => build(document.createElement(tag), attributes, children);

/** An SVG element (the chart and the gauge are drawn from these). */
export const svg = (tag, attributes, ...children) => build(document.createElementNS(SVG, tag), attributes, children);

/** A translated sentence with elements in its {placeholders}: the text around them stays text. */
export function fillTemplate(template, nodes) {
  const parts = [];
  let last = 0;
  for (const match of template.matchAll(/\{(\w+)\}/g)) {
    parts.push(template.slice(last, match.index));
    parts.push(nodes[match[1]] ?? match[0]);
    last = match.index + match[0].length;
  }
  parts.push(template.slice(last));
  return parts.filter(part => part !== '');
}

/**
 * The lines of `after` compared with those of `before`, in order: [{kind: same|removed|added, text}]. A longest common
 * subsequence over lines: memory blocks hold a few thousand characters at most, so the quadratic table stays small.
 */
export function diffLines(before, after) {
  const a = before ? before.split('\n') : [];
  const b = after ? after.split('\n') : [];
  const lengths = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lengths[i][j] = a[i] === b[j] ? lengths[i + 1][j + 1] + 1 : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
    }
  }
  const parts = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      parts.push({ kind: 'same', text: a[i++] });
      j++;
    } else if (i < a.length && (j === b.length || lengths[i + 1][j] >= lengths[i][j + 1])) {
      parts.push({ kind: 'removed', text: a[i++] }); // a replaced line reads as removed, then added
    } else {
      parts.push({ kind: 'added', text: b[j++] });
    }
  }
  return parts;
}
