// One relayed dial: bytes both ways between a socket and its HTTP/2 stream, each direction with its
// own backpressure (pipe), counted by direction; either end closing closes both.
import type { Http2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TunnelStats } from './stats.ts';

export function relay(socket: Duplex, stream: Http2Stream & Duplex, stats: TunnelStats, directions: { fromSocket: string; fromStream: string }): void {
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
    socket.destroy();
    if (!stream.closed) stream.close();
  };
  socket.on('close', close);
  stream.on('close', close);
  stream.on('error', close);
}
