// The budget gauge in the header (spent and reserved shares of the limit, what is left) and the budget dialog: the
// figures, the personal limit, and the usage of the last 30 days by day and by model as SVG bar charts with a table.
import { request } from './api.js';
import { addStrings, t, translate, formatDate, formatUsd, formatNumber, getLanguage } from './i18n.js';
import { notify, describe } from './notices.js';
import { element, svg } from './dom.js';

const DAYS = 30;
const DAY_MS = 86_400_000;

const gauge = document.getElementById('budget-gauge');
const dialog = document.getElementById('budget-dialog');
const body = document.getElementById('budget-body');

let budget = null;                   // the last GET /api/v1/user/budget
let usage = { day: null, model: null }; // the last usage reports, one per grouping
let session = 0;                     // bumped on sign-out: an answer for the previous user is dropped
let ui;

/** Amounts as exact as the ledger keeps them: a turn on a cheap model costs a fraction of a cent. */
export const usd = value => formatUsd(value, value !== 0 && Math.abs(value) < 0.0001 ? 9 : 6);

// The header has room for cents; what is left is rounded down, so it never reads as more than there is.
const usdLeft = value => (Math.abs(value) >= 1
  ? new Intl.NumberFormat(getLanguage(), { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2, roundingMode: 'floor' }).format(value)
  : usd(value));

export function initBudget() {
  ui = build();
  gauge.replaceChildren(ui.gauge.root);
  body.replaceChildren(ui.dialog.root);
  translate(gauge);
  translate(body);
  paint();

  const open = () => {
    dialog.showModal();
    refreshBudget();
    refreshUsage();
  };
  ui.gauge.button.addEventListener('click', open);
  ui.gauge.meter.addEventListener('click', open); // the bar is a pointer target too; the button is the keyboard's

  window.addEventListener('aichat:signed-in', () => refreshBudget());
  window.addEventListener('aichat:signed-out', () => {
    session++;
    budget = null;
    usage = { day: null, model: null };
    dialog.close();
    ui.dialog.limitInput.value = '';
    showError('');
    paint();
  });
  // The title call after a conversation's first turn is billed too: its end shows up as the conversation's update.
  for (const name of ['aichat:turn-completed', 'aichat:usage', 'aichat:conversation-updated']) {
    window.addEventListener(name, () => {
      refreshBudget();
      if (dialog.open) {
        refreshUsage();
      }
    });
  }
  window.addEventListener('aichat:language', () => {
    translate(gauge);
    translate(body);
    paint();
  });
  // The charts are drawn at the width they get (crisp text at 360 px and on a desktop alike).
  new ResizeObserver(() => drawCharts()).observe(ui.dialog.usage);
}

// ----- loading: one request at a time per kind, and one more if something asked meanwhile -----

function coalesced(load, failed) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        const mine = session;
        try {
          await load(() => mine === session);
        } catch (error) {
          if (mine === session) {
            failed(error);
          }
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return run;
}

const refreshBudget = coalesced(async current => {
  const answer = await request('/api/v1/user/budget');
  if (current()) {
    budget = answer;
    ui.dialog.summaryError.hidden = true;
    paint();
  }
}, error => {
  // The header keeps the last figures (the chat says what is wrong with the connection); the open dialog says it.
  ui.dialog.summaryError.textContent = describe(error);
  ui.dialog.summaryError.hidden = false;
});

const refreshUsage = coalesced(async current => {
  const { from, to } = window30();
  const ask = groupBy => request(`/api/v1/user/usage?${new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), group_by: groupBy })}`);
  const [day, model] = await Promise.all([ask('day'), ask('model')]);
  if (current()) {
    usage = { day, model };
    paintUsage();
  }
}, error => {
  ui.dialog.totals.textContent = describe(error);
});

/** The last 30 UTC days, today included: the API groups by UTC date. */
function window30() {
  const now = new Date();
  const tomorrow = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return { from: new Date(tomorrow - DAYS * DAY_MS), to: new Date(tomorrow) };
}

// ----- building the DOM once -----

function build() {
  const bar = meterBar('gauge-bar');
  const meter = element('div', { class: 'gauge-meter', role: 'meter', 'aria-valuemin': '0', 'data-i18n-label': 'budget.gauge.label' }, bar.root);
  const button = element('button', { type: 'button', class: 'ghost gauge-button', 'aria-haspopup': 'dialog', 'aria-controls': 'budget-dialog' });
  const gaugeRoot = element('div', { class: 'gauge', hidden: true }, meter, button);

  const bigBar = meterBar('budget-bar');
  const bigMeter = element('div', { class: 'budget-meter', role: 'meter', 'aria-valuemin': '0', 'data-i18n-label': 'budget.gauge.label' }, bigBar.root);
  const figures = element('dl', { class: 'budget-figures' });
  const summaryError = element('p', { class: 'form-error', role: 'alert', hidden: true });
  const figure = key => {
    const value = element('dd', { id: `budget-${key}` });
    figures.append(element('div', { class: `figure figure-${key}` }, element('dt', { 'data-i18n': `budget.${key}` }), value));
    return value;
  };
  const values = { spent: figure('spent'), reserved: figure('reserved'), remaining: figure('remaining'), limit: figure('limit'), resets: figure('resets') };
  const legend = element('p', { class: 'budget-legend', 'aria-hidden': 'true' },
    element('span', { class: 'swatch swatch-spent' }), element('span', { 'data-i18n': 'budget.spent' }),
    element('span', { class: 'swatch swatch-reserved' }), element('span', { 'data-i18n': 'budget.reserved.short' }),
    element('span', { class: 'swatch swatch-left' }), element('span', { 'data-i18n': 'budget.remaining' }));

  const limitInput = element('input', { id: 'budget-personal-input', inputmode: 'decimal', autocomplete: 'off', 'aria-describedby': 'budget-personal-state budget-personal-error' });
  const limitState = element('p', { id: 'budget-personal-state', class: 'panel-lead' });
  const limitError = element('p', { id: 'budget-personal-error', class: 'form-error', role: 'alert', hidden: true });
  const setLimit = element('button', { type: 'submit', class: 'primary', 'data-i18n': 'budget.personal.save' });
  const removeLimit = element('button', { type: 'button', class: 'ghost', 'data-i18n': 'budget.personal.remove' });
  const limitForm = element('form', { class: 'personal-limit', novalidate: true },
    element('label', { for: 'budget-personal-input', 'data-i18n': 'budget.personal.label' }),
    element('div', { class: 'personal-limit-row' }, limitInput, setLimit, removeLimit),
    limitError);
  limitForm.addEventListener('submit', event => {
    event.preventDefault();
    submitLimit(limitInput.value);
  });
  removeLimit.addEventListener('click', () => submitLimit(null));

  const totals = element('p', { class: 'usage-totals', role: 'status' });
  const byDay = chartFigure('day');
  const byModel = chartFigure('model');
  const usageSection = element('section', { class: 'budget-usage', 'aria-labelledby': 'budget-usage-title' },
    element('h3', { id: 'budget-usage-title', 'data-i18n': 'budget.usage.title' }), totals, byDay.root, byModel.root);

  const dialogRoot = element('div', { class: 'budget-panel' },
    element('section', { class: 'budget-summary', 'aria-labelledby': 'budget-summary-title' },
      element('h3', { id: 'budget-summary-title', 'data-i18n': 'budget.summary' }), summaryError, bigMeter, legend, figures),
    element('section', { class: 'budget-personal', 'aria-labelledby': 'budget-personal-title' },
      element('h3', { id: 'budget-personal-title', 'data-i18n': 'budget.personal.title' }), limitState, limitForm),
    usageSection);

  return {
    gauge: { root: gaugeRoot, meter, bar, button },
    dialog: { root: dialogRoot, summaryError, meter: bigMeter, bar: bigBar, values, limitInput, limitState, limitError, setLimit, removeLimit, usage: usageSection, totals, byDay, byModel },
  };
}

/** A bar of spent (solid) and reserved (hatched) shares of the limit; its meter element carries the numbers. */
function meterBar(className) {
  const spent = svg('rect', { class: 'bar-spent', height: '10' });
  const reserved = svg('rect', { class: 'bar-reserved', height: '10' });
  const root = svg('svg', { class: className, viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false' },
    svg('rect', { class: 'bar-track', width: '100', height: '10' }), spent, reserved);
  return {
    root,
    set(spentShare, reservedShare) {
      const s = clamp(spentShare * 100);
      spent.setAttribute('width', String(s));
      reserved.setAttribute('x', String(s));
      reserved.setAttribute('width', String(clamp(reservedShare * 100, 100 - s)));
    },
  };
}

const clamp = (value, max = 100) => Math.max(0, Math.min(max, Number.isFinite(value) ? value : 0));

function chartFigure(group) {
  const caption = element('figcaption', { id: `usage-${group}-caption`, 'data-i18n': `budget.usage.by.${group}` });
  const canvas = element('div', { class: 'chart-canvas' });
  const table = element('table', { class: 'usage-table' });
  const details = element('details', { class: 'usage-details' }, element('summary', { 'data-i18n': 'budget.usage.asTable' }), table);
  const root = element('figure', { class: 'usage-chart', 'data-group': group }, caption, canvas, details);
  return { root, canvas, table };
}

// ----- painting from the state -----

function paint() {
  const { gauge: g, dialog: d } = ui;
  g.root.hidden = !budget;
  if (!budget) {
    Object.values(d.values).forEach(value => { value.textContent = ''; });
    d.limitState.textContent = '';
    d.limitInput.placeholder = '';
    paintUsage();
    return;
  }
  const limit = budget.effective_limit_usd;
  const used = budget.spent_usd + budget.reserved_usd;
  const share = value => (limit > 0 ? value / limit : (value > 0 ? 1 : 0));
  const text = t('budget.gauge.valueText', { spent: usd(budget.spent_usd), reserved: usd(budget.reserved_usd), remaining: usd(budget.remaining_usd), limit: usd(limit) });
  for (const [meter, bar] of [[g.meter, g.bar], [d.meter, d.bar]]) {
    bar.set(share(budget.spent_usd), share(budget.reserved_usd));
    meter.setAttribute('aria-valuemax', String(limit));
    meter.setAttribute('aria-valuenow', String(Math.min(used, limit)));
    meter.setAttribute('aria-valuetext', text);
    meter.title = text;
  }
  const level = budget.remaining_usd <= 0 ? 'exhausted' : share(used) >= 0.8 ? 'low' : 'ok';
  g.root.dataset.level = level;
  d.meter.dataset.level = level;
  g.button.textContent = t('budget.gauge.left', { amount: usdLeft(budget.remaining_usd) });
  g.button.setAttribute('aria-label', t('budget.gauge.open', { amount: usd(budget.remaining_usd) }));

  d.values.spent.textContent = usd(budget.spent_usd);
  d.values.reserved.textContent = usd(budget.reserved_usd);
  d.values.remaining.textContent = usd(budget.remaining_usd);
  d.values.limit.textContent = t('budget.limit.value', { amount: usd(limit), period: t(`budget.duration.${budget.duration}`) });
  d.values.resets.textContent = formatDate(budget.resets_at);
  d.values.resets.title = new Date(budget.resets_at).toLocaleString(getLanguage());
  d.limitState.textContent = budget.personal_limit_usd === null
    ? t('budget.personal.none', { grant: usd(budget.max_budget_usd), period: t(`budget.duration.${budget.duration}`) })
    : t('budget.personal.current', { amount: usd(budget.personal_limit_usd), grant: usd(budget.max_budget_usd), period: t(`budget.duration.${budget.duration}`) });
  d.removeLimit.disabled = budget.personal_limit_usd === null;
  d.limitInput.placeholder = t('budget.personal.placeholder', { example: example(), grant: usd(budget.max_budget_usd) });
  paintUsage();
}

function paintUsage() {
  const { totals, byDay, byModel } = ui.dialog;
  if (!usage.day || !usage.model) {
    totals.textContent = budget ? t('budget.usage.loading') : '';
    byDay.canvas.replaceChildren();
    byModel.canvas.replaceChildren();
    byDay.table.replaceChildren();
    byModel.table.replaceChildren();
    return;
  }
  const sum = usage.day.totals;
  totals.textContent = sum.calls
    ? t('budget.usage.totals', { cost: usd(sum.cost_usd), calls: t('budget.usage.calls', { count: sum.calls }), tokens: formatNumber(sum.prompt_tokens + sum.completion_tokens) })
    : t('budget.usage.none');
  fillTable(byDay.table, 'day', usage.day.series.map(point => ({ ...point, name: dayName(point.key, { year: 'numeric' }) })));
  fillTable(byModel.table, 'model', usage.model.series.map(point => ({ ...point, name: point.key })));
  drawCharts();
}

function showError(text) {
  const error = ui.dialog.limitError;
  error.textContent = text;
  error.hidden = !text;
}

// ----- the personal limit -----

// An amount written the way the language writes it (2.50, 2,50); either separator is accepted.
const example = () => new Intl.NumberFormat(getLanguage(), { minimumFractionDigits: 2 }).format(2.5);

async function submitLimit(raw) {
  let limit = null;
  if (raw !== null) {
    const text = raw.trim().replace(',', '.');
    if (!/^\d+(\.\d+)?$/.test(text)) {
      showError(t('budget.personal.invalid', { example: example() }));
      ui.dialog.limitInput.focus();
      return;
    }
    limit = Number(text);
  }
  const { setLimit, removeLimit, limitInput } = ui.dialog;
  setLimit.disabled = true;
  removeLimit.disabled = true;
  showError('');
  try {
    budget = await request('/api/v1/user/budget', { method: 'POST', body: { personal_limit_usd: limit } });
    limitInput.value = '';
    notify(limit === null ? t('budget.personal.removed') : t('budget.personal.saved', { amount: usd(limit) }), { kind: 'info' });
  } catch (error) {
    showError(error.code === 'limit_above_grant'
      ? t('budget.personal.aboveGrant', { grant: usd(error.problem.max_budget_usd ?? budget?.max_budget_usd ?? 0) })
      : describe(error));
    limitInput.focus();
  } finally {
    setLimit.disabled = false;
    paint();
  }
}

// ----- the usage charts -----

const dayName = (key, extra = {}) => new Intl.DateTimeFormat(getLanguage(), { day: 'numeric', month: 'short', timeZone: 'UTC', ...extra }).format(new Date(`${key}T00:00:00Z`));

function barTitle(name, point) {
  return t('budget.usage.barTitle', {
    name,
    cost: usd(point.cost_usd),
    calls: t('budget.usage.calls', { count: point.calls }),
    tokens: formatNumber(point.prompt_tokens + point.completion_tokens),
  });
}

function drawCharts() {
  if (!usage.day || !usage.model || !dialog.open) {
    return;
  }
  const { byDay, byModel } = ui.dialog;
  const width = Math.max(240, Math.floor(byDay.canvas.clientWidth || 320));
  const { from } = window30();
  const costs = new Map(usage.day.series.map(point => [point.key, point]));
  const days = Array.from({ length: DAYS }, (_, index) => {
    const key = new Date(from.getTime() + index * DAY_MS).toISOString().slice(0, 10);
    return costs.get(key) ?? { key, cost_usd: 0, prompt_tokens: 0, completion_tokens: 0, calls: 0 };
  });
  byDay.canvas.replaceChildren(columnChart(days, width));
  byModel.canvas.replaceChildren(modelChart(usage.model.series, width));
}

/** Steps of 1, 2 or 5 × 10ⁿ: an axis whose top reads as a round amount. */
function niceTop(max) {
  if (!(max > 0)) {
    return 0.01;
  }
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map(step => step * power).find(top => top >= max * (1 - 1e-9));
}

/** One column per day; the y axis in USD, the x axis labelled about once a week and on today. */
function columnChart(days, width) {
  const height = 170;
  const margin = { top: 12, right: 8, bottom: 26, left: 62 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const top = niceTop(Math.max(...days.map(day => day.cost_usd)));
  const y = value => margin.top + plotHeight - (value / top) * plotHeight;
  const band = plotWidth / days.length;
  const chart = svg('svg', {
    class: 'chart chart-days', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': t('budget.usage.chartLabel.day', { total: usd(usage.day.totals.cost_usd) }),
  });
  for (const value of [0, top / 2, top]) {
    chart.append(
      svg('line', { class: 'chart-grid', x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value) }),
      svg('text', { class: 'chart-tick', x: margin.left - 6, y: y(value), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, usd(value)));
  }
  const labelEvery = Math.max(1, Math.ceil(56 / band));
  days.forEach((day, index) => {
    const barHeight = day.cost_usd > 0 ? Math.max(2, (day.cost_usd / top) * plotHeight) : 0;
    const isToday = index === days.length - 1;
    chart.append(svg('rect', {
      class: `chart-bar${isToday ? ' today' : ''}`, 'data-key': day.key, 'data-cost': day.cost_usd,
      x: (margin.left + index * band + band * 0.15).toFixed(2), width: (band * 0.7).toFixed(2),
      y: (margin.top + plotHeight - barHeight).toFixed(2), height: barHeight.toFixed(2),
    }, svg('title', {}, barTitle(dayName(day.key), day))));
    const fromToday = days.length - 1 - index;
    if (isToday || (fromToday % labelEvery === 0 && fromToday * band >= 64)) { // 64 px: room for today's label
      // Today's label ends at the plot's right edge, where a centred one would be cut off.
      chart.append(svg('text', { class: 'chart-tick', x: isToday ? width - margin.right : margin.left + (index + 0.5) * band, y: height - 8, 'text-anchor': isToday ? 'end' : 'middle' },
        isToday ? t('budget.usage.today') : dayName(day.key)));
    }
  });
  chart.append(svg('line', { class: 'chart-axis', x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0) }));
  return chart;
}

/** One horizontal bar per model, its name above it and its cost at its end: long model names keep their room. */
function modelChart(series, width) {
  const row = 38;
  const margin = { top: 6, right: 8, bottom: 6, left: 4 };
  const models = [...series].sort((a, b) => b.cost_usd - a.cost_usd);
  const height = margin.top + margin.bottom + Math.max(1, models.length) * row;
  const chart = svg('svg', {
    class: 'chart chart-models', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': t('budget.usage.chartLabel.model', { count: models.length }),
  });
  if (!models.length) {
    chart.append(svg('text', { class: 'chart-empty', x: margin.left, y: margin.top + row / 2 }, t('budget.usage.none')));
    return chart;
  }
  const top = Math.max(...models.map(model => model.cost_usd)) || 1;
  const plotWidth = width - margin.left - margin.right;
  models.forEach((model, index) => {
    const y = margin.top + index * row;
    const barWidth = model.cost_usd > 0 ? Math.max(2, (model.cost_usd / top) * plotWidth) : 0;
    chart.append(
      svg('text', { class: 'chart-name', x: margin.left, y: y + 12 }, model.key),
      svg('text', { class: 'chart-value', x: width - margin.right, y: y + 12, 'text-anchor': 'end' }, usd(model.cost_usd)),
      svg('rect', { class: 'chart-bar', 'data-key': model.key, 'data-cost': model.cost_usd, x: margin.left, y: y + 18, width: barWidth.toFixed(2), height: 12 },
        svg('title', {}, barTitle(model.key, model))));
  });
  return chart;
}

function fillTable(table, group, rows) {
  const head = element('tr', {},
    ...[`budget.usage.col.${group}`, 'budget.usage.col.cost', 'budget.usage.col.calls', 'budget.usage.col.prompt', 'budget.usage.col.completion']
      .map(key => element('th', { scope: 'col' }, t(key))));
  const lines = rows.map(point => element('tr', { 'data-key': point.key },
    element('th', { scope: 'row' }, point.name),
    element('td', {}, usd(point.cost_usd)),
    element('td', {}, formatNumber(point.calls)),
    element('td', {}, formatNumber(point.prompt_tokens)),
    element('td', {}, formatNumber(point.completion_tokens))));
  table.replaceChildren(
    element('caption', { class: 'sr-only' }, t(`budget.usage.by.${group}`)),
    element('thead', {}, head),
    element('tbody', {}, ...(lines.length ? lines : [element('tr', {}, element('td', { colspan: '5' }, t('budget.usage.none')))])));
}

addStrings({
  en: {
    'budget.gauge.label': 'Budget used',
    'budget.gauge.left': '{amount} left',
    'budget.gauge.open': 'Budget: {amount} left. Show budget and usage',
    'budget.gauge.valueText': '{spent} spent and {reserved} reserved of {limit}; {remaining} left',
    'budget.summary': 'This period',
    'budget.spent': 'Spent',
    'budget.reserved': 'Reserved for replies in progress',
    'budget.reserved.short': 'Reserved',
    'budget.remaining': 'Left',
    'budget.limit': 'Limit',
    'budget.limit.value': '{amount} {period}',
    'budget.resets': 'Starts again on',
    'budget.duration.1d': 'per day',
    'budget.duration.1w': 'per week',
    'budget.duration.1mo': 'per month',
    'budget.duration.3mo': 'per 3 months',
    'budget.duration.6mo': 'per 6 months',
    'budget.duration.1y': 'per year',
    'budget.personal.title': 'Your own limit',
    'budget.personal.none': 'You may spend all of your budget of {grant} {period}. Set a lower limit to spend less.',
    'budget.personal.current': 'You have limited yourself to {amount} (your budget is {grant} {period}).',
    'budget.personal.label': 'Personal limit in USD',
    'budget.personal.placeholder': 'e.g. {example} (at most {grant})',
    'budget.personal.save': 'Set limit',
    'budget.personal.remove': 'Remove limit',
    'budget.personal.saved': 'Your limit is now {amount}.',
    'budget.personal.removed': 'Your own limit is removed.',
    'budget.personal.invalid': 'Enter an amount in dollars, such as {example}.',
    'budget.personal.aboveGrant': 'That is more than your budget of {grant}. Only an administrator can raise the budget.',
    'budget.usage.title': 'Usage in the last 30 days',
    'budget.usage.loading': 'Loading…',
    'budget.usage.totals': '{cost} for {calls} ({tokens} tokens).',
    'budget.usage.calls.one': '{count} model call',
    'budget.usage.calls.other': '{count} model calls',
    'budget.usage.none': 'No usage in the last 30 days.',
    'budget.usage.by.day': 'Cost per day (UTC)',
    'budget.usage.by.model': 'Cost per model',
    'budget.usage.asTable': 'Show as a table',
    'budget.usage.today': 'today',
    'budget.usage.barTitle': '{name}: {cost}, {calls}, {tokens} tokens',
    'budget.usage.chartLabel.day': 'Bar chart of the cost per day over the last 30 days, {total} in all. The table below has the figures.',
    'budget.usage.chartLabel.model': 'Bar chart of the cost per model ({count}). The table below has the figures.',
    'budget.usage.col.day': 'Day',
    'budget.usage.col.model': 'Model',
    'budget.usage.col.cost': 'Cost',
    'budget.usage.col.calls': 'Calls',
    'budget.usage.col.prompt': 'Prompt tokens',
    'budget.usage.col.completion': 'Reply tokens',
  },
  ru: {
    'budget.gauge.label': 'Израсходовано из бюджета',
    'budget.gauge.left': 'осталось {amount}',
    'budget.gauge.open': 'Бюджет: осталось {amount}. Показать бюджет и расходы',
    'budget.gauge.valueText': 'потрачено {spent} и зарезервировано {reserved} из {limit}; осталось {remaining}',
    'budget.summary': 'Текущий период',
    'budget.spent': 'Потрачено',
    'budget.reserved': 'В резерве под текущие ответы',
    'budget.reserved.short': 'Резерв',
    'budget.remaining': 'Осталось',
    'budget.limit': 'Лимит',
    'budget.limit.value': '{amount} {period}',
    'budget.resets': 'Обновится',
    'budget.duration.1d': 'в день',
    'budget.duration.1w': 'в неделю',
    'budget.duration.1mo': 'в месяц',
    'budget.duration.3mo': 'за 3 месяца',
    'budget.duration.6mo': 'за 6 месяцев',
    'budget.duration.1y': 'в год',
    'budget.personal.title': 'Ваш собственный лимит',
    'budget.personal.none': 'Вы можете потратить весь бюджет: {grant} {period}. Задайте лимит ниже, чтобы тратить меньше.',
    'budget.personal.current': 'Вы ограничили себя суммой {amount} (бюджет — {grant} {period}).',
    'budget.personal.label': 'Личный лимит в долларах США',
    'budget.personal.placeholder': 'например, {example} (не больше {grant})',
    'budget.personal.save': 'Задать лимит',
    'budget.personal.remove': 'Снять лимит',
    'budget.personal.saved': 'Ваш лимит теперь {amount}.',
    'budget.personal.removed': 'Личный лимит снят.',
    'budget.personal.invalid': 'Введите сумму в долларах, например {example}.',
    'budget.personal.aboveGrant': 'Это больше вашего бюджета {grant}. Увеличить бюджет может только администратор.',
    'budget.usage.title': 'Расходы за последние 30 дней',
    'budget.usage.loading': 'Загрузка…',
    'budget.usage.totals': '{cost} за {calls} ({tokens} токенов).',
    'budget.usage.calls.one': '{count} вызов модели',
    'budget.usage.calls.few': '{count} вызова модели',
    'budget.usage.calls.many': '{count} вызовов модели',
    'budget.usage.calls.other': '{count} вызова модели',
    'budget.usage.none': 'За последние 30 дней расходов нет.',
    'budget.usage.by.day': 'Расходы по дням (UTC)',
    'budget.usage.by.model': 'Расходы по моделям',
    'budget.usage.asTable': 'Показать таблицей',
    'budget.usage.today': 'сегодня',
    'budget.usage.barTitle': '{name}: {cost}, {calls}, токенов: {tokens}',
    'budget.usage.chartLabel.day': 'Столбчатая диаграмма расходов по дням за 30 дней, всего {total}. Цифры — в таблице ниже.',
    'budget.usage.chartLabel.model': 'Столбчатая диаграмма расходов по моделям ({count}). Цифры — в таблице ниже.',
    'budget.usage.col.day': 'День',
    'budget.usage.col.model': 'Модель',
    'budget.usage.col.cost': 'Стоимость',
    'budget.usage.col.calls': 'Вызовы',
    'budget.usage.col.prompt': 'Токены запроса',
    'budget.usage.col.completion': 'Токены ответа',
  },
});
