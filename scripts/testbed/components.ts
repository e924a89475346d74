// Command lines of the meta-cluster's control-plane processes, in start order. Pure: a function of
// the configuration, so the flags can be read and tested without starting anything.
import { join } from 'node:path';
import type { TestbedConfig } from './config.ts';
import { statePaths } from './config.ts';

export interface ComponentCommand {
  name: 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler';
  binary: string;
  args: string[];
  /** Port it listens on, checked to be free before start. */
  ports: number[];
}

export function componentCommands(config: TestbedConfig): ComponentCommand[] {
  const p = statePaths(config.stateDir);
  const pki = (file: string) => join(p.pki, file);
  const host = config.bindAddress;
  const { ports } = config;
  const etcdClientURL = `http://${host}:${ports.etcdClient}`;
  const etcdPeerURL = `http://${host}:${ports.etcdPeer}`;
  const k8s = (name: string) => join(config.binDirs.kubernetes, name);
  const componentAuth = (name: string) => [
    `--kubeconfig=${p.kubeconfig(name)}`,
    `--authentication-kubeconfig=${p.kubeconfig(name)}`,
    `--authorization-kubeconfig=${p.kubeconfig(name)}`,
    `--bind-address=${host}`,
    '--leader-elect=false',
  ];

  return [
    {
      name: 'etcd',
      binary: join(config.binDirs.etcd, 'etcd'),
      ports: [ports.etcdClient, ports.etcdPeer],
      args: [
        '--name=meta',
        `--data-dir=${p.etcdData}`,
        `--listen-client-urls=${etcdClientURL}`,
        `--advertise-client-urls=${etcdClientURL}`,
        `--listen-peer-urls=${etcdPeerURL}`,
        `--initial-advertise-peer-urls=${etcdPeerURL}`,
        `--initial-cluster=meta=${etcdPeerURL}`,
        // a throw-away test bed on loopback: durability is traded for speed, as envtest does
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
    },
    {
      name: 'kube-apiserver',
      binary: k8s('kube-apiserver'),
      ports: [ports.apiserver],
      args: [
        `--etcd-servers=${etcdClientURL}`,
        `--bind-address=${config.apiserverAddress}`,
        `--advertise-address=${config.apiserverAddress}`,
        `--secure-port=${ports.apiserver}`,
        `--tls-cert-file=${pki('apiserver.crt')}`,
        `--tls-private-key-file=${pki('apiserver.key')}`,
        `--client-ca-file=${pki('ca.crt')}`,
        '--authorization-mode=Node,RBAC',
        '--anonymous-auth=false',
        '--enable-admission-plugins=NodeRestriction',
        '--allow-privileged=true',
        `--service-cluster-ip-range=${config.serviceCIDR}`,
        `--service-account-issuer=https://kubernetes.default.svc.${config.dnsDomain}`,
        `--service-account-key-file=${pki('sa.pub')}`,
        `--service-account-signing-key-file=${pki('sa.key')}`,
        `--kubelet-client-certificate=${pki('apiserver-kubelet-client.crt')}`,
        `--kubelet-client-key=${pki('apiserver-kubelet-client.key')}`,
        '--kubelet-preferred-address-types=InternalIP,Hostname',
        `--proxy-client-cert-file=${pki('front-proxy-client.crt')}`,
        `--proxy-client-key-file=${pki('front-proxy-client.key')}`,
        `--requestheader-client-ca-file=${pki('front-proxy-ca.crt')}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-username-headers=X-Remote-User',
        '--profiling=false',
      ],
    },
    {
      name: 'kube-controller-manager',
      binary: k8s('kube-controller-manager'),
      ports: [ports.controllerManager],
      args: [
        ...componentAuth('kube-controller-manager'),
        `--secure-port=${ports.controllerManager}`,
        `--service-account-private-key-file=${pki('sa.key')}`,
        `--root-ca-file=${pki('ca.crt')}`,
        `--cluster-signing-cert-file=${pki('ca.crt')}`,
        `--cluster-signing-key-file=${pki('ca.key')}`,
        '--use-service-account-credentials=true',
        '--controllers=*,bootstrapsigner,tokencleaner',
        `--service-cluster-ip-range=${config.serviceCIDR}`,
        `--cluster-cidr=${config.podCIDR}`,
        '--profiling=false',
      ],
    },
    {
      name: 'kube-scheduler',
      binary: k8s('kube-scheduler'),
      ports: [ports.scheduler],
      args: [...componentAuth('kube-scheduler'), `--secure-port=${ports.scheduler}`, '--profiling=false'],
    },
  ];
}
