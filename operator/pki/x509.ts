// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata
// polyfill loaded first; every module of the project imports x509 from here for that reason.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };
