// Image references the end-to-end tests run: the project's own image and the busybox helper,
// both built locally and pre-loaded into the node's containerd.
import { projectVersion } from '../scripts/images/build.ts';
import { busyboxImage, projectImageName } from '../scripts/images/catalog.ts';

export const projectImage = `${projectImageName}:${projectVersion()}`;
export { busyboxImage };
