// One relayed dial: bytes both ways between a socket and its HTTP/2 stream, each direction with its
// own backpressure (pipe), counted by direction. Either end closing closes both, but an end that
// came as an end (FIN, END_STREAM) first delivers everything sent before it: the pipes pass it on
// behind the data, so only a side that did not end (an error, a reset) is cut at once.
import type { Http2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TunnelStats } from './stats.ts';

/** How long a side that ended may take to deliver what it still holds before it is cut. */
const lingerMs = 30_000;

export function relay(
  socket: Duplex,
  stream: Http2Stream & Duplex,
  stats: TunnelStats,
  directions: { fromSocket: string; fromStream: string },
): void {
  stats.streamOpened();
  socket.on('data', (c: Buffer) => stats.bytes(directions.fromSocket, c.length));
  stream.on('data', (c: Buffer) => stats.bytes(directions.fromStream, c.length));
  socket.pipe(stream);
  stream.pipe(socket);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    stats.streamClosed();
    // the socket was ended by the pipe: destroyed once its last bytes are written
    if (socket.writableEnded && !socket.writableFinished && !socket.destroyed) {
      const cut = setTimeout(() => socket.destroy(), lingerMs);
      socket.once('finish', () => {
        clearTimeout(cut);
        socket.destroy();
      });
      socket.once('close', () => clearTimeout(cut));
    } else {
      socket.destroy();
    }
    if (stream.closed) return;
    if (!stream.writableEnded) {
      stream.close();
      return;
    }
    // the stream was ended by the pipe: closing it now would reset it and drop what waits behind
    // its flow-control window; it closes when the other side ends too, and what it still reads
    // has no reader left
    stream.resume();
    const cut = setTimeout(() => {
      if (!stream.closed) stream.close();
    }, lingerMs);
    stream.once('close', () => clearTimeout(cut));
  };
  socket.on('close', close);
  stream.on('close', close);
  stream.on('error', close);
}
