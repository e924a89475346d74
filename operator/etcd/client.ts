// The operator's etcd client: etcd's own gRPC-JSON gateway (`/v3/...` over HTTPS on the client
// port, on by default in every etcd 3.x) with the operator's client certificate. No dependency:
// the few calls membership needs are JSON POSTs, and the same requests can be replayed with curl
// when a human has to look. uint64 values (member IDs, indexes, sizes) arrive as decimal strings
// and are kept as strings or bigints, never as lossy numbers.
import { Agent, request } from 'node:https';
import { connect } from 'node:tls';

export interface EtcdCredentials {
  /** PEM of the etcd CA, of the client certificate and of its key. */
  ca: string;
  cert: string;
  key: string;
}

/** Where one member is dialled: its address (a Pod IP) and the name its certificate carries. */
export interface EtcdTarget {
  address: string;
  servername: string;
  port?: number;
}

export interface EtcdMember {
  /** Decimal, as etcd sends it; `memberIdHex` gives the form etcdctl prints. */
  id: string;
  /** Empty until the member has started and published itself. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface EtcdStatus {
  memberId: string;
  leader: string;
  version: string;
  raftIndex: bigint;
  raftAppliedIndex: bigint;
  dbSize: number;
  dbSizeInUse: number;
  isLearner: boolean;
  /** Alarms and raft errors the member reports (e.g. NOSPACE, "no leader"). */
  errors: string[];
}

/** An answer from etcd that is an error (`code` is the gRPC code), or no answer at all (`code` undefined). */
export class EtcdError extends Error {
  readonly code: number | undefined;
  constructor(message: string, code?: number) {
    super(message);
    this.name = 'EtcdError';
    this.code = code;
  }
}

export const memberIdHex = (id: string): string => BigInt(id).toString(16);

interface RawMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

const member = (m: RawMember): EtcdMember => ({
  id: m.ID ?? '0',
  name: m.name ?? '',
  peerURLs: m.peerURLs ?? [],
  clientURLs: m.clientURLs ?? [],
  isLearner: m.isLearner ?? false,
});

export class EtcdClient {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #credentials: EtcdCredentials;

  constructor(credentials: EtcdCredentials, { timeoutMs = 3000 } = {}) {
    this.#credentials = credentials;
    // keep-alive: a pass asks every member for its status; one TLS handshake per member, not per call
    this.#agent = new Agent({
      ca: credentials.ca,
      cert: credentials.cert,
      key: credentials.key,
      keepAlive: true,
      maxSockets: 4,
    });
    this.#timeoutMs = timeoutMs;
  }

  close(): void {
    this.#agent.destroy();
  }

  /**
   * The serial number of the certificate the member serves now, from a handshake of its own (a
   * kept-alive connection would show the one it served when that connection was opened): etcd
   * reads its key pair on each handshake, so this tells whether it picked up a renewed one.
   */
  servedSerial(target: EtcdTarget): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(
        {
          host: target.address,
          port: target.port ?? 2379,
          servername: target.servername,
          ...this.#credentials,
          timeout: this.#timeoutMs,
        },
        () => {
          resolve(socket.getPeerX509Certificate()?.serialNumber ?? '');
          socket.end();
        },
      );
      socket.on('timeout', () =>
        socket.destroy(new Error(`no TLS handshake with ${target.servername} within ${this.#timeoutMs} ms`)),
      );
      socket.on('error', reject);
    });
  }

  /** The member list, read through raft (linearizable): it fails rather than answer from a member cut off from quorum. */
  async memberList(target: EtcdTarget): Promise<EtcdMember[]> {
    const body = await this.#call<{ members?: RawMember[] }>(target, '/v3/cluster/member/list', { linearizable: true });
    return (body.members ?? []).map(member);
  }

  async status(target: EtcdTarget): Promise<EtcdStatus> {
    type Raw = Partial<
      Record<'leader' | 'version' | 'raftIndex' | 'raftAppliedIndex' | 'dbSize' | 'dbSizeInUse', string>
    > & { header?: { member_id?: string }; errors?: string[]; isLearner?: boolean };
    const s = await this.#call<Raw>(target, '/v3/maintenance/status', {});
    const big = (k: 'raftIndex' | 'raftAppliedIndex') => BigInt(s[k] ?? '0');
    return {
      memberId: s.header?.member_id ?? '0',
      leader: s.leader ?? '0',
      version: s.version ?? '',
      raftIndex: big('raftIndex'),
      raftAppliedIndex: big('raftAppliedIndex'),
      dbSize: Number(s.dbSize ?? 0),
      dbSizeInUse: Number(s.dbSizeInUse ?? 0),
      isLearner: s.isLearner === true,
      errors: s.errors ?? [],
    };
  }

  /** Adds a member by its peer URL, as a learner (a non-voting member) unless said otherwise. */
  async memberAdd(target: EtcdTarget, peerURL: string, { learner = true } = {}): Promise<EtcdMember> {
    const body = await this.#call<{ member?: RawMember }>(target, '/v3/cluster/member/add', {
      peerURLs: [peerURL],
      isLearner: learner,
    });
    return member(body.member ?? {});
  }

  async memberRemove(target: EtcdTarget, id: string): Promise<void> {
    await this.#call(target, '/v3/cluster/member/remove', { ID: id });
  }

  /** Makes a learner a voting member; etcd refuses while the learner has not caught up with the leader. */
  async memberPromote(target: EtcdTarget, id: string): Promise<void> {
    await this.#call(target, '/v3/cluster/member/promote', { ID: id });
  }

  /** Hands the leadership to member `id`; etcd accepts this only from the leader itself (`target`). */
  async moveLeader(target: EtcdTarget, id: string): Promise<void> {
    await this.#call(target, '/v3/maintenance/transfer-leadership', { targetID: id });
  }

  /**
   * Streams a consistent snapshot of the member's backend (etcd's Snapshot RPC; the file ends with
   * the sha256 that `etcdutl snapshot restore` checks) to `out`, chunk by chunk. Resolves with the
   * bytes written and the revision of the snapshot. No overall timeout: a large database takes
   * time; a stall of `idleMs` without a chunk fails it.
   */
  snapshot(
    target: EtcdTarget,
    out: (chunk: Buffer) => Promise<void>,
    { idleMs = 30_000 } = {},
  ): Promise<{ bytes: number; revision: bigint }> {
    const path = '/v3/maintenance/snapshot';
    const fail = (message: string, code?: number) => new EtcdError(`${path} on ${target.servername}: ${message}`, code);
    return new Promise((resolve, reject) => {
      let bytes = 0;
      let revision = 0n;
      let pending = '';
      let writing = Promise.resolve();
      let failed = false;
      const stop = (err: Error) => {
        if (!failed) {
          failed = true;
          req.destroy();
          reject(err);
        }
      };
      // the gateway sends one JSON message per line: {"result": {...}} or {"error": {...}}
      const line = (text: string) => {
        if (text.trim() === '') return;
        type Message = {
          result?: { header?: { revision?: string }; blob?: string };
          error?: { message?: string; code?: number };
        };
        let message: Message;
        try {
          message = JSON.parse(text) as Message;
        } catch {
          return stop(fail('an answer that is not JSON'));
        }
        if (message.error) return stop(fail(message.error.message ?? 'error', message.error.code));
        const header = message.result?.header?.revision;
        if (header) revision = BigInt(header);
        const blob = Buffer.from(message.result?.blob ?? '', 'base64');
        bytes += blob.length;
        if (blob.length > 0) writing = writing.then(() => out(blob));
      };
      const req = request(
        {
          host: target.address,
          port: target.port ?? 2379,
          servername: target.servername,
          path,
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', 'content-length': 2 },
          timeout: idleMs,
        },
        (res) => {
          if ((res.statusCode ?? 500) >= 300) {
            res.resume();
            return stop(fail(`HTTP ${res.statusCode}`));
          }
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            pending += chunk;
            let newline: number;
            while ((newline = pending.indexOf('\n')) >= 0) {
              line(pending.slice(0, newline));
              pending = pending.slice(newline + 1);
            }
            // no more than what was received so far waits in memory: read on once it is written
            res.pause();
            writing.then(
              () => res.resume(),
              (err: unknown) => stop(err as Error),
            );
          });
          res.on('error', (err) => stop(fail(err.message)));
          res.on('end', () => {
            line(pending);
            if (failed) return;
            if (bytes === 0) return stop(fail('an empty snapshot'));
            writing.then(
              () => resolve({ bytes, revision }),
              (err: unknown) => stop(err as Error),
            );
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`nothing for ${idleMs} ms`)));
      req.on('error', (err) => stop(fail(err.message)));
      req.end('{}');
    });
  }

  #call<T>(target: EtcdTarget, path: string, payload: unknown): Promise<T> {
    const data = JSON.stringify(payload);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          host: target.address,
          port: target.port ?? 2379,
          servername: target.servername,
          path,
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new EtcdError(`${path} on ${target.servername}: ${err.message}`)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: (T & { error?: string; message?: string; code?: number }) | undefined;
            try {
              parsed = JSON.parse(text) as T & { error?: string; message?: string; code?: number };
            } catch {
              return reject(new EtcdError(`${path} on ${target.servername}: HTTP ${res.statusCode}, not JSON`));
            }
            if (
              (res.statusCode ?? 500) >= 300 ||
              parsed.error !== undefined ||
              (parsed.code !== undefined && parsed.message !== undefined)
            ) {
              return reject(
                new EtcdError(
                  `${path} on ${target.servername}: ${parsed.message ?? parsed.error ?? `HTTP ${res.statusCode}`}`,
                  parsed.code,
                ),
              );
            }
            resolve(parsed);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (err) => reject(new EtcdError(`${path} on ${target.servername}: ${err.message}`)));
      req.end(data);
    });
  }
}
