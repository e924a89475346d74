// Offline validation of Machine objects: the answers the apiserver gives for the Machine CRD (its
// schema and CEL rules, each rule twinned here by its exact text), for the operator's own reads
// and any tool that imports it.
import { isIP } from 'node:net';
import { machineResource, machineSchema, type Machine } from './machine.generated.ts';
import { createValidator, isObject, text, type Twin } from './schema-validator.ts';

const dnsName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const sameOptional = (key: string) => (self: unknown, oldSelf: unknown) =>
  (text(self, key) ?? '') === (text(oldSelf, key) ?? '');
const operatorFlags = [
  'bootstrap-kubeconfig',
  'kubeconfig',
  'config',
  'hostname-override',
  'node-ip',
  'cert-dir',
  'root-dir',
];

const twins = new Map<string, Twin>([
  ['self == oldSelf', { holds: (self, oldSelf) => self === oldSelf }],
  [
    "(has(self.clusterName) ? self.clusterName : '') == (has(oldSelf.clusterName) ? oldSelf.clusterName : '')",
    { holds: sameOptional('clusterName') },
  ],
  [
    "(has(self.hostname) ? self.hostname : '') == (has(oldSelf.hostname) ? oldSelf.hostname : '')",
    { holds: sameOptional('hostname') },
  ],
  [
    "isIP(self) || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
    // CEL's isIP takes no zone and no IPv4-mapped IPv6 address, as net.isIP does not refuse
    { holds: (self) => typeof self === 'string' && ((isIP(self) !== 0 && !self.includes('%')) || dnsName.test(self)) },
  ],
  [
    "self.user == 'root' || self.sudo",
    { holds: (self) => isObject(self) && (self.user === 'root' || self.sudo === true) },
  ],
  [
    "self.all(k, k.matches('^[a-z0-9][-a-z0-9.]*$'))",
    { holds: (self) => isObject(self) && Object.keys(self).every((k) => /^[a-z0-9][-a-z0-9.]*$/.test(k)) },
  ],
  [
    "self.all(k, !(k in ['bootstrap-kubeconfig', 'kubeconfig', 'config', 'hostname-override', 'node-ip', 'cert-dir', 'root-dir']))",
    { holds: (self) => isObject(self) && Object.keys(self).every((k) => !operatorFlags.includes(k)) },
  ],
]);

const validator = createValidator<Machine>({
  resource: machineResource,
  schema: machineSchema,
  twins,
  twinsModule: 'operator/api/machine-validation.ts',
});

export const validateMachine = (object: unknown) => validator.validate(object);
export const validateMachineUpdate = (oldObject: unknown, newObject: unknown) =>
  validator.validateUpdate(oldObject, newObject);
