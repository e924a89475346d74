// The first rung of the repair ladder: restart a service (the next, reinstalling from the host's
// cache, is the install operation again with `reinstall`).
import { services, type ServiceName } from './layout.ts';
import { preamble } from './shell.ts';

export function restartScript(service: ServiceName): string {
  return `${preamble(undefined)}
report '{"step":"restart-${service}"}'
svc_restart ${services[service]}
report '{"result":"restarted"}'
`;
}
