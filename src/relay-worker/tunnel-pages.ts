// The plain pages an HTTP tunnel answers with when it cannot reach the local server, or refuses a request
// (docs/PROTOCOL.md §12.5). Short, the same shape every time, and never more than the status and one sentence:
// nothing about the agent, the secret or the relay beyond what the status says.

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function tunnelErrorPage(status: number, sentence: string, headers: Record<string, string> = {}): Response {
  const title = `${status} ${TITLES[status] ?? 'Error'}`;
  const body = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>\n` +
    `<body><h1>${title}</h1>\n<p>${escapeHtml(sentence)}</p>\n<p><small>zks tunnel</small></p></body></html>\n`;
  return new Response(body, {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}
