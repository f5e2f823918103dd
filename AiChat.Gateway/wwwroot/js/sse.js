// Server-Sent Events over fetch (EventSource cannot send an Authorization header), parsed as the HTML standard says:
// fields id / event / data, comment lines ignored, an event dispatched at a blank line.

/** The events of a text/event-stream response, as {id, event, data} with data parsed as JSON. Ends with the body. */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let pending = { id: null, event: 'message', data: [] };
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1);
        if (line === '') {
          if (pending.data.length > 0) {
            yield { id: pending.id, event: pending.event, data: parse(pending.data.join('\n')) };
          }
          pending = { id: pending.id, event: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) {
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') {
          pending.data.push(text);
        } else if (field === 'event') {
          pending.event = text;
        } else if (field === 'id') {
          pending.id = text;
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
