// The conformance run's result from the JUnit reports of its two phases (parallel, then
// [Serial]): each spec of the focus counted once, by the phase that ran it. Writes summary.json
// beside the reports and prints "N passed, M failed, S skipped" last.
// usage: node scripts/conformance-summary.ts RESULTS KUBERNETES COMMIT SECONDS [FOCUS] [SKIP]
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export type Outcome = 'passed' | 'failed' | 'skipped';

const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'" };
const decodeEntities = (s: string): string => s.replace(/&(amp|lt|gt|quot|apos);/g, (e) => entities[e] ?? e);

/** Each test case of a ginkgo JUnit report: its name and what became of it (ginkgo's status attribute). */
export function testCases(junit: string): { name: string; status: string }[] {
  const cases: { name: string; status: string }[] = [];
  for (const m of junit.matchAll(/<testcase\b([^>]*)>/g)) {
    const attrs = new Map<string, string>();
    for (const a of (m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)) attrs.set(a[1] ?? '', decodeEntities(a[2] ?? ''));
    const name = attrs.get('name');
    if (name) cases.push({ name, status: attrs.get('status') ?? 'passed' });
  }
  return cases;
}

/**
 * Every spec of the focus once: run in some phase (passed or failed, whatever the other phase
 * skipped), else skipped. Setup nodes ([SynchronizedBeforeSuite] ...) are not specs.
 */
/** The specs a run chose: conformance ones, matching the focus and not the skip (ginkgo's regexes) when given. */
export function chosen(focus = '', skip = ''): (name: string) => boolean {
  const f = focus ? new RegExp(focus) : undefined;
  const s = skip ? new RegExp(skip) : undefined;
  return (name) => name.includes('[Conformance]') && (!f || f.test(name)) && !s?.test(name);
}

export function tally(
  reports: string[],
  isChosen: (name: string) => boolean,
): { outcomes: Map<string, Outcome>; failed: string[] } {
  const outcomes = new Map<string, Outcome>();
  for (const report of reports) {
    for (const c of testCases(report)) {
      if (!c.name.startsWith('[It]') || !isChosen(c.name)) continue;
      const outcome: Outcome =
        c.status === 'passed' ? 'passed' : c.status === 'skipped' || c.status === 'pending' ? 'skipped' : 'failed';
      const before = outcomes.get(c.name);
      if (before === undefined || before === 'skipped') outcomes.set(c.name, outcome);
    }
  }
  const failed = [...outcomes].filter(([, o]) => o === 'failed').map(([n]) => n);
  return { outcomes, failed };
}

function reportsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^junit.*\.xml$/.test(f))
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [results = '', kubernetes = '', commit = '', seconds = '0', focus = '', skip = ''] = process.argv.slice(2);
  const { outcomes, failed } = tally(
    ['parallel', 'serial'].flatMap((phase) => reportsUnder(join(results, phase))),
    chosen(focus, skip),
  );
  const count = (o: Outcome) => [...outcomes.values()].filter((v) => v === o).length;
  const summary = {
    kubernetes,
    commit,
    seconds: Number(seconds),
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    failures: failed,
  };
  writeFileSync(join(results, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  for (const f of failed) process.stdout.write(`failed: ${f}\n`);
  process.stdout.write(
    `conformance ${kubernetes} at ${commit}, ${Math.round(summary.seconds / 60)} min; results in ${results}\n`,
  );
  process.stdout.write(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped\n`);
  process.exitCode = summary.failed > 0 || summary.passed === 0 ? 1 : 0;
}
