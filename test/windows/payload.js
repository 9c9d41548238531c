'use strict';
// The bytes of datagram `index` of a case with `seed`, `length` bytes long: both sides of the
// Wine test compute them, so any lost, reordered or altered datagram shows.
function payload(seed, index, length) {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (seed * 131 + index * 31 + i * 7 + (i >> 8)) & 0xff;
  if (length >= 8) {
    bytes.writeUInt32BE(seed >>> 0, 0);
    bytes.writeUInt32BE(index >>> 0, 4);
  }
  return bytes;
}

module.exports = { payload };
