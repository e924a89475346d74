import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { boundedText } from './bounded-body.ts';

describe('boundedText', () => {
  it('reads a small answer whole, and stops at the bound of an endless one', async () => {
    let closed = false;
    const server = createServer((req, res) => {
      if (req.url === '/small') return res.end('kubeonkube_tunnel_server_connections 2\n');
      res.on('close', () => {
        closed = true;
      });
      const chunk = 'x'.repeat(16 << 10);
      const push = () => {
        while (res.write(chunk));
      };
      res.on('drain', push);
      push();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      expect(await boundedText(await fetch(`http://127.0.0.1:${port}/small`), 1024)).toEqual({
        text: 'kubeonkube_tunnel_server_connections 2\n',
        cut: false,
      });
      const endless = await boundedText(await fetch(`http://127.0.0.1:${port}/endless`), 64 << 10);
      expect(endless.cut).toBe(true);
      expect(endless.text.length).toBe(64 << 10);
      // the connection is given up, not read to its end
      await new Promise((r) => setTimeout(r, 200));
      expect(closed).toBe(true);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
