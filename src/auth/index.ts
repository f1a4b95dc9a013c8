export { hashKey, toKeyHash, fingerprintKey } from './key-hash.js';
