// Drives AiChat's OpenAI-compatible endpoint with the official SDK, as a stateless client does (the whole history on
// every call), and prints what it saw as one JSON object for AiChat.Tests/Clients/OpenAiSdkTests to check.
import OpenAI from "openai";

const baseURL = process.env.AICHAT_BASE_URL;
const model = process.env.AICHAT_MODEL;
const client = new OpenAI({ baseURL, apiKey: process.env.AICHAT_KEY, maxRetries: 0 });
const poor = new OpenAI({ baseURL, apiKey: process.env.AICHAT_POOR_KEY, maxRetries: 0 });
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

// 1. Not streamed, with fields real clients send that the agent does not take (they are ignored, not refused).
const history = [{ role: "system", content: "You are helpful." }, { role: "user", content: "my name is Ana" }];
const first = await client.chat.completions.create({ model, messages: history, temperature: 0.2, top_p: 1, user: "sdk-check" }).withResponse();
out.first = {
  content: first.data.choices[0].message.content,
  finish_reason: first.data.choices[0].finish_reason,
  usage: first.data.usage,
  conversation: first.response.headers.get("x-aichat-conversation"),
};
history.push({ role: "assistant", content: first.data.choices[0].message.content });

// 2. Streamed, resending the history, with the usage chunk.
history.push({ role: "user", content: "what is my name?" });
const stream = await client.chat.completions.create({ model, messages: history, stream: true, stream_options: { include_usage: true } }).withResponse();
let text = "";
let finish = null;
let usage = null;
let chunks = 0;
for await (const chunk of stream.data) {
  chunks++;
  if (chunk.choices.length > 0) {
    text += chunk.choices[0].delta.content ?? "";
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  if (chunk.usage) usage = chunk.usage;
}
out.second = { content: text, finish_reason: finish, usage, chunks, conversation: stream.response.headers.get("x-aichat-conversation") };
history.push({ role: "assistant", content: text });

// 3. The whole history again, and one more question.
history.push({ role: "user", content: "I like green tea" });
const third = await client.chat.completions.create({ model, messages: history }).withResponse();
out.third = { content: third.data.choices[0].message.content, conversation: third.response.headers.get("x-aichat-conversation") };

// 4. A new chat (no history): another conversation, and the agent's memory still knows the name.
const fresh = await client.chat.completions.create({ model, messages: [{ role: "user", content: "what is my name?" }] }).withResponse();
out.fresh = { content: fresh.data.choices[0].message.content, conversation: fresh.response.headers.get("x-aichat-conversation") };

// 5. A user over their budget: the SDK raises the mapped error, streamed or not.
const refusal = async (options) => {
  try {
    const answer = await poor.chat.completions.create({ model, messages: [{ role: "user", content: "hello" }], ...options });
    if (options.stream) for await (const _ of answer) { /* drain */ }
    return { raised: false };
  } catch (error) {
    return { raised: true, name: error.constructor.name, is_api_error: error instanceof OpenAI.APIError, status: error.status, code: error.code, type: error.type, message: error.message };
  }
};
out.budget = await refusal({});
out.budget_streamed = await refusal({ stream: true });

// 6. An unknown model.
try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
  out.unknown_model = { raised: false };
} catch (error) {
  out.unknown_model = { raised: true, name: error.constructor.name, status: error.status, code: error.code };
}

console.log(JSON.stringify(out));
