import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../api/formats.ts';
import { AddressNotAllowed, allowedAddress, lastLine } from './host-access.ts';

const networks = ['10.251.0.0/16', 'fd00:1::/64'].map((text) => ({ text, cidr: parseCidr(text)! }));
const names: Record<string, string[]> = {
  'bj-a-0017.idc': ['10.251.0.17'],
  'sneaky.idc': ['10.251.0.18', '10.112.0.1'],
};
const lookup = (name: string) => (names[name] ? Promise.resolve(names[name]) : Promise.reject(new Error('NXDOMAIN')));

describe("a Machine's address", () => {
  it('is dialled only within the allowed networks, a name at the address it resolved to', async () => {
    expect(await allowedAddress('10.251.3.2', networks, lookup)).toBe('10.251.3.2');
    expect(await allowedAddress('fd00:1::5', networks, lookup)).toBe('fd00:1::5');
    expect(await allowedAddress('bj-a-0017.idc', networks, lookup)).toBe('10.251.0.17');
  });

  it('is refused outside them, for a name that resolves outside even once, and when no range is named', async () => {
    await expect(allowedAddress('10.112.0.1', networks, lookup)).rejects.toThrow(
      "spec.address 10.112.0.1 is not in the operator's allowedMachineNetworks (10.251.0.0/16, fd00:1::/64)",
    );
    await expect(allowedAddress('sneaky.idc', networks, lookup)).rejects.toThrow('sneaky.idc (10.112.0.1)');
    await expect(allowedAddress('nowhere.idc', networks, lookup)).rejects.toThrow('does not resolve');
    await expect(allowedAddress('10.251.3.2', [], lookup)).rejects.toThrow(AddressNotAllowed);
    await expect(allowedAddress('10.251.3.2', [], lookup)).rejects.toThrow('none: the platform named no range');
  });

  it("shows a host's last error line as plain text of bounded length", () => {
    expect(lastLine('a\nb\n\n')).toBe('b');
    expect(lastLine(`x\n\u001b[31mred\u0007 ${'y'.repeat(500)}`)).toBe(`[31mred ${'y'.repeat(500)}`.slice(0, 300));
    expect(lastLine('')).toBeUndefined();
  });
});
