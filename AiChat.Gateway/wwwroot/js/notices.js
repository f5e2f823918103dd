// Plain-language messages for the API's problem codes, and the toast area that shows them.
import { t, formatDate } from './i18n.js';

const LLM_CODES = ['llm_unreachable', 'llm_rate_limited', 'llm_rejected', 'llm_protocol_error', 'llm_error', 'upstream_unavailable'];

/** What to tell a person about an ApiError (or a turn.failed problem). */
export function describe(error) {
  const code = error?.code ?? error?.problem?.code ?? '';
  const seconds = error?.retryAfter ?? error?.retry_after ?? 5;
  switch (code) {
    case 'network':
      return t('error.network');
    case 'budget_exceeded': {
      const resets = error?.problem?.resets_at ?? error?.resets_at;
      return resets ? t('error.budget_exceeded', { resets: formatDate(resets) }) : t('error.budget_exceeded.plain');
    }
    case 'rate_limited':
    case 'over_request_rate_limit':
    case 'server_busy':
      return t(`error.${code}`, { seconds });
    case 'too_many_streams':
    case 'too_many_turns':
    case 'conversation_busy':
    case 'agent_busy':
    case 'cancelled':
    case 'message_too_long':
    case 'invalid_credentials':
    case 'user_already_exists':
    case 'weak_password':
      return t(`error.${code}`);
    case 'validation_failed':
      return t('error.validation_failed', { detail: validationDetail(error) });
    default:
      if (LLM_CODES.includes(code)) {
        return t('error.llm');
      }
      return t('error.generic', { detail: error?.problem?.detail ?? error?.detail ?? error?.message ?? code });
  }
}

function validationDetail(error) {
  const errors = error?.problem?.errors ?? error?.errors;
  return errors ? Object.values(errors).flat().join(' ') : (error?.problem?.detail ?? '');
}

/** A toast that goes away by itself; role=status is announced by screen readers. */
export function notify(text, { kind = 'error', timeout = 8000 } = {}) {
  const area = document.getElementById('notices');
  const toast = document.createElement('div');
  toast.className = `notice notice-${kind}`;
  toast.textContent = text;
  area.append(toast);
  setTimeout(() => toast.remove(), timeout);
  return toast;
}

export const notifyError = error => notify(describe(error));
