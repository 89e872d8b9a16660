// The text of a request's prompt, for the enforce-mode estimate (the server counts it).

/** Text of a message content: a string, or the text of its text parts (other parts are not counted). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) => {
      if (typeof part === 'string') return part;
      const p = part as { type?: string; text?: unknown; content?: unknown };
      if (typeof p.text === 'string') return p.text;
      if (p.type === 'tool_result') return contentText(p.content);
      return '';
    })
    .filter((s) => s !== '')
    .join('\n');
}

/** Messages' texts joined by newlines, and their count. */
export function messagesText(messages: unknown): { text: string; count: number } {
  if (!Array.isArray(messages)) return { text: '', count: 0 };
  return { text: messages.map((m) => contentText((m as { content?: unknown }).content)).join('\n'), count: messages.length };
}

/** The chat format's overhead (OpenAI's documented count: 3 per message, 3 to prime the reply). */
export function chatOverhead(messages: number): number {
  return messages > 0 ? 3 * messages + 3 : 0;
}
