// The images the upstream conformance suite starts (`e2e.test --list-images`, narrowed to the
// `[Conformance]` focus), under their exact upstream names and tags, built here from what the
// package registries serve: the real programs where they are Go modules (agnhost, nonewprivs,
// sample-apiserver, etcd), Debian's tools for what the images carry (dig, nslookup, curl, nc,
// getent), and stand-ins only where nothing else exists (httpd and nginx: busybox's web server on
// :80 over the same document root, with sh and mv, which the StatefulSet specs use to break and
// mend a pod's readiness). README lists each with its source.
import { appendFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addBase, addBusybox, addFile, addSharedLibraries, busyboxBinary, type ImageDefinition } from './catalog.ts';

export interface ConformanceInputs {
  /** Where build-binaries.sh put the conformance group (agnhost, nonewprivs, sample-apiserver). */
  bins: string;
  /** The pinned etcd's binaries (a second name for them). */
  etcd: string;
  /** k8s.io/kubernetes's source in the module cache: agnhost's porter certificate lives there. */
  kubernetesSource: string;
  /**
   * Upstream's busybox (scripts/build-busybox.sh), for the busybox image: Debian's drops
   * environment variables whose names are no shell identifiers (`p-data-1`), which the env-from
   * specs read back with `sh -c env`, and a spec compares ash's own error text.
   */
  busybox: string;
}

/** Host tools the agnhost and dnsutils images carry, with their libraries (Debian packages). */
export const conformanceTools = {
  curl: '/usr/bin/curl',
  // netcat-openbsd: the specs use -v -t -u -z -w, which busybox's nc lacks
  nc: '/usr/bin/nc.openbsd',
  dig: '/usr/bin/dig',
  nslookup: '/usr/bin/nslookup',
  host: '/usr/bin/host',
  getent: '/usr/bin/getent',
  // the shell of upstream's Debian-based images: busybox's own runs its applets (nc among them)
  // before anything on PATH
  dash: '/usr/bin/dash',
};
export const conformancePackages = ['curl', 'bind9-dnsutils', 'netcat-openbsd'];

const e2e = (name: string) => `registry.k8s.io/e2e-test-images/${name}`;
/** The aggregator spec's etcd sidecar, the one image of the suite outside e2e-test-images. */
export const suiteEtcdImage = 'registry.k8s.io/etcd:3.6.4-0';

/** busybox for the rest, then the tools and dash as /bin/sh, as upstream's Debian-based images have them. */
function addTools(rootfs: string, tools: (keyof typeof conformanceTools)[]): void {
  addBusybox(rootfs, ['sh', ...tools]);
  for (const tool of tools) addFile(rootfs, conformanceTools[tool], `/usr/bin/${tool}`);
  symlinkSync('/usr/bin/dash', join(rootfs, 'bin/sh'));
  addSharedLibraries(
    rootfs,
    tools.map((t) => conformanceTools[t]),
  );
}

/** Each name its own image (two tags of the same content would share an ID, and a pod would report the other's). */
const named = (ref: string) => ({ 'org.opencontainers.image.ref.name': ref });
const path = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function agnhost(ref: string, inputs: ConformanceInputs, extra?: (rootfs: string) => void, cmd = ['pause']) {
  const binary = join(inputs.bins, 'agnhost');
  const porter = join(inputs.kubernetesSource, 'test/images/agnhost/porter');
  return {
    ref,
    config: { entrypoint: ['/agnhost'], cmd, env: [path], labels: named(ref) },
    inputs: [binary, busyboxBinary, ...Object.values(conformanceTools)],
    stage: (rootfs: string) => {
      addBase(rootfs);
      // the user and group a SupplementalGroups spec expects to be defined in the image
      appendFileSync(join(rootfs, 'etc/passwd'), 'user-defined-in-image:x:1000:1000::/home/user:/bin/sh\n');
      appendFileSync(
        join(rootfs, 'etc/group'),
        'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n',
      );
      addTools(rootfs, ['curl', 'nc', 'dig', 'nslookup', 'host', 'getent', 'dash']);
      addFile(rootfs, binary, '/agnhost');
      // the entrypoint specs start the same program under a second name
      symlinkSync('agnhost', join(rootfs, 'agnhost-2'));
      // porter's TLS ports serve this pair, as upstream's image does
      addFile(rootfs, join(porter, 'localhost.crt'), '/localhost.crt', 0o644);
      addFile(rootfs, join(porter, 'localhost.key'), '/localhost.key', 0o644);
      mkdirSync(join(rootfs, 'uploads'), { recursive: true });
      extra?.(rootfs);
    },
  } satisfies ImageDefinition;
}

/** busybox's httpd on :80 over `docroot`, started by `command`: the stand-in for upstream's httpd and nginx. */
function webServer(ref: string, docroot: string, command: { path: string; cmd: string[] }): ImageDefinition {
  return {
    ref,
    config: { cmd: command.cmd, env: [path], labels: named(ref) },
    inputs: [busyboxBinary],
    stage: (rootfs) => {
      addBase(rootfs);
      addBusybox(rootfs);
      mkdirSync(join(rootfs, docroot), { recursive: true });
      writeFileSync(join(rootfs, docroot, 'index.html'), '<html><body><h1>It works!</h1></body></html>\n');
      mkdirSync(join(rootfs, command.path, '..'), { recursive: true });
      // whatever arguments upstream's command line passes, the same server in the foreground; as
      // PID 1 it would ignore SIGTERM (it sets no handler), where httpd and nginx stop at once:
      // the shell stops it instead of each pod waiting out its grace period
      writeFileSync(
        join(rootfs, command.path),
        [
          '#!/bin/sh',
          `/bin/busybox httpd -f -v -p 80 -h ${docroot} &`,
          "trap 'kill $! 2>/dev/null; exit 0' TERM INT QUIT",
          'wait',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
    },
  };
}

export function conformanceImages(inputs: ConformanceInputs): ImageDefinition[] {
  const busybox = (ref: string): ImageDefinition => ({
    ref,
    config: { cmd: ['sh'], env: [path], labels: named(ref) },
    inputs: [inputs.busybox],
    stage: (rootfs) => {
      addBase(rootfs);
      addBusybox(rootfs, [], inputs.busybox);
    },
  });
  const httpd = (tag: string) =>
    webServer(e2e(`httpd:${tag}`), '/usr/local/apache2/htdocs', {
      path: '/usr/local/bin/httpd-foreground',
      cmd: ['httpd-foreground'],
    });
  return [
    agnhost(e2e('agnhost:2.56'), inputs),
    // the Update Demo's page: what the spec reads back through the pod proxy
    agnhost(
      e2e('nautilus:1.7'),
      inputs,
      (rootfs) => {
        writeFileSync(join(rootfs, 'data.json'), '{"image": "nautilus.jpg"}\n');
        writeFileSync(join(rootfs, 'nautilus.jpg'), 'a nautilus\n');
      },
      ['test-webserver'],
    ),
    busybox(e2e('busybox:1.37.0-1')),
    httpd('2.4.38-4'),
    httpd('2.4.39-4'),
    webServer(e2e('nginx:1.14-4'), '/usr/share/nginx/html', {
      path: '/usr/sbin/nginx',
      cmd: ['nginx', '-g', 'daemon off;'],
    }),
    {
      ref: e2e('jessie-dnsutils:1.7'),
      config: { cmd: ['sh'], env: [path], labels: named(e2e('jessie-dnsutils:1.7')) },
      inputs: [busyboxBinary, ...Object.values(conformanceTools)],
      stage: (rootfs) => {
        addBase(rootfs);
        addTools(rootfs, ['dig', 'nslookup', 'host', 'getent', 'dash']);
      },
    },
    {
      ref: e2e('nonewprivs:1.3'),
      config: { cmd: ['nnp'], env: [path], labels: named(e2e('nonewprivs:1.3')) },
      inputs: [join(inputs.bins, 'nonewprivs')],
      stage: (rootfs) => {
        addBase(rootfs);
        // setuid root: the spec checks that no_new_privs keeps it from taking effect
        addFile(rootfs, join(inputs.bins, 'nonewprivs'), '/usr/local/bin/nnp', 0o4755);
      },
    },
    {
      ref: e2e('sample-apiserver:1.29.2'),
      config: { entrypoint: ['/sample-apiserver'], env: [path], labels: named(e2e('sample-apiserver:1.29.2')) },
      inputs: [join(inputs.bins, 'sample-apiserver')],
      stage: (rootfs) => {
        addBase(rootfs);
        addFile(rootfs, join(inputs.bins, 'sample-apiserver'), '/sample-apiserver');
      },
    },
    {
      // the aggregator spec's etcd sidecar, by the name the suite gives it; its data directory is
      // made in the working directory, /
      ref: suiteEtcdImage,
      config: { cmd: ['/usr/local/bin/etcd'], env: [path], labels: named(suiteEtcdImage) },
      inputs: [join(inputs.etcd, 'etcd')],
      stage: (rootfs) => {
        addBase(rootfs);
        addFile(rootfs, join(inputs.etcd, 'etcd'), '/usr/local/bin/etcd');
      },
    },
  ];
}
