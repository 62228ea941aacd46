import { type Server, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { PROBLEM_CONTENT_TYPE } from './problem';

/** Node's parser codes for a request line or headers over `maxHeaderSize` (16 KiB). */
const TOO_LARGE = new Set(['HPE_HEADER_OVERFLOW', 'HPE_URI_TOO_LONG']);

/**
 * Requests that Node's HTTP parser refuses never reach Express (a URL or headers over 16 KiB,
 * a malformed request line): Node would answer a bare 400/431 without a body. This answers
 * them as problem+json like every other error, then closes the connection as Node would.
 */
export function answerClientErrorsWithProblems(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = TOO_LARGE.has(err.code ?? '') ? 431 : 400;
    const body = JSON.stringify({
      type: 'about:blank',
      title: STATUS_CODES[status],
      status,
      detail:
        status === 431
          ? 'The request line or headers are larger than the server accepts (16 KiB).'
          : 'The request is not valid HTTP.',
    });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}
