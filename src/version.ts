/** Cableway's version; sent as X-AnyCable-Version and printed by --version. */
export const VERSION = "0.1.0";
