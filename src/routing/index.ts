export { matchPath, type PathMatch } from './match-path.js';
