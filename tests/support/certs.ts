/** A throwaway CA and certificates for 127.0.0.1, made with `openssl` (Debian package openssl). */

export interface TestCerts {
  dir: string;
  /** CA certificate (PEM text) and its path. */
  ca: string;
  caPath: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  remove(): Promise<void>;
}

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

/** CA, a server certificate (SAN 127.0.0.1, localhost) and a client certificate. */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "cableway-certs-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Cableway test CA",
  ]);
  for (const [name, ext] of [["server", "serverAuth"], ["client", "clientAuth"]]) {
    await openssl(dir, [
      "req",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
    ]);
    await Deno.writeTextFile(
      `${dir}/${name}.ext`,
      `subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=${ext}\n`,
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
  return {
    dir,
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    caPath: `${dir}/ca.pem`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server.key`,
    clientCert: `${dir}/client.pem`,
    clientKey: `${dir}/client.key`,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
