/** The SDK's version: package.json's, which is the vault's Cargo workspace version (a test holds all three equal). */
export const VERSION = "0.1.0";
