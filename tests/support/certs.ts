/**
 * A throwaway PKI for TLS tests, made with the openssl CLI (Debian package openssl) in a
 * temporary directory: a CA, a server certificate and a client certificate it signed (SAN
 * 127.0.0.1 and localhost), and an unrelated CA (the "wrong" one). `remove()` deletes it all.
 */

export interface TestCerts {
  dir: string;
  /** The CA certificate: PEM text and path. */
  ca: string;
  caPath: string;
  /** Server certificate and key: paths, and their PEM text. */
  serverCert: string;
  serverKey: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** Client certificate and key (mutual TLS): paths. */
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here. */
  otherCaPath: string;
  remove(): Promise<void>;
}

/** Whether the openssl CLI can be run here. */
export function hasOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

async function makeLeaf(dir: string, name: string, usage: string): Promise<void> {
  await openssl(dir, [
    "req",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    `${dir}/${name}.ext`,
    [
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      `extendedKeyUsage=${usage}`,
    ].join("\n") + "\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]);
}

export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "cableway-certs-" });
  await makeCa(dir, "ca", "Cableway test CA");
  await makeCa(dir, "other-ca", "Some other CA");
  await makeLeaf(dir, "server", "serverAuth");
  await makeLeaf(dir, "client", "clientAuth");
  return {
    dir,
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    caPath: `${dir}/ca.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server.key`,
    serverCertPem: await Deno.readTextFile(`${dir}/server.pem`),
    serverKeyPem: await Deno.readTextFile(`${dir}/server.key`),
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client.key`,
    otherCaPath: `${dir}/other-ca.pem`,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
