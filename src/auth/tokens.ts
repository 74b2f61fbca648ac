// OAuth2 client-credentials access tokens: short-lived ES256 JWTs signed with a key kept (encrypted) in the store,
// so every process or Appwrite execution signs and verifies with the same keys. JWKS publishes the public halves.
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { HubError } from '../errors.ts';
import type { Clock } from '../lib/clock.ts';
import { newId } from '../lib/ids.ts';
import type { Cipher } from '../lib/secrets.ts';
import type { Store } from '../store/types.ts';

export const TOKEN_AUDIENCE = 'hub-api';
const ALG = 'ES256';

export interface AccessTokenClaims {
  clientId: string;
  workspaceId: string;
  scopes: string[];
  expiresAt: number;
}

interface LoadedKey {
  kid: string;
  publicJwk: JWK;
  publicKey: CryptoKey;
  privateKey?: CryptoKey;
}

export interface TokenService {
  issue(input: { clientId: string; workspaceId: string; scopes: string[]; ttlSeconds: number }): Promise<{ token: string; expiresIn: number }>;
  /** Verifies signature, issuer, audience and expiry; throws `unauthenticated` otherwise. */
  verify(token: string): Promise<AccessTokenClaims>;
  jwks(): Promise<{ keys: JWK[] }>;
}

export function createTokenService(deps: { store: Store; cipher: Cipher; clock: Clock; issuer: string }): TokenService {
  const { store, cipher, clock, issuer } = deps;
  let keys: Map<string, LoadedKey> | null = null;
  let loading: Promise<Map<string, LoadedKey>> | null = null;

  async function load(): Promise<Map<string, LoadedKey>> {
    const out = new Map<string, LoadedKey>();
    const page = await store.table('signing_keys').query({ where: { retiredAt: null }, limit: 100 });
    for (const row of page.items) {
      out.set(row.id, {
        kid: row.id,
        publicJwk: row.publicJwk as JWK,
        publicKey: (await importJWK(row.publicJwk as JWK, ALG)) as CryptoKey,
        privateKey: (await importJWK(cipher.decryptJson<JWK>(row.privateJwk), ALG)) as CryptoKey,
      });
    }
    if (out.size === 0) {
      const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
      const kid = newId('sk');
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
      await store.table('signing_keys').insert({
        id: kid,
        alg: ALG,
        publicJwk,
        privateJwk: cipher.encryptJson(await exportJWK(privateKey)),
        retiredAt: null,
      });
      out.set(kid, { kid, publicJwk, publicKey, privateKey });
    }
    return out;
  }

  async function getKeys(refresh = false): Promise<Map<string, LoadedKey>> {
    if (keys && !refresh) return keys;
    loading ??= load().finally(() => (loading = null));
    keys = await loading;
    return keys;
  }

  return {
    async issue({ clientId, workspaceId, scopes, ttlSeconds }) {
      const all = await getKeys();
      // the newest key signs; older ones still verify until retired
      const signer = [...all.values()].sort((a, b) => (a.kid < b.kid ? 1 : -1))[0]!;
      const now = Math.floor(clock.now() / 1000);
      const token = await new SignJWT({ ws: workspaceId, scope: scopes.join(' ') })
        .setProtectedHeader({ alg: ALG, kid: signer.kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(TOKEN_AUDIENCE)
        .setSubject(clientId)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .setJti(newId('tok'))
        .sign(signer.privateKey!);
      return { token, expiresIn: ttlSeconds };
    },

    async verify(token) {
      let payload: JWTPayload;
      try {
        const result = await jwtVerify(
          token,
          async (header) => {
            let found = header.kid ? (await getKeys()).get(header.kid) : undefined;
            if (!found && header.kid) found = (await getKeys(true)).get(header.kid); // a key another process made
            if (!found) throw new Error('unknown key id');
            return found.publicKey;
          },
          {
            issuer,
            audience: TOKEN_AUDIENCE,
            algorithms: [ALG],
            typ: 'at+jwt',
            currentDate: new Date(clock.now()),
          },
        );
        payload = result.payload;
      } catch (err) {
        const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
        throw new HubError('unauthenticated', expired ? 'The access token has expired' : 'The access token is not valid');
      }
      if (typeof payload.sub !== 'string' || typeof payload.ws !== 'string' || typeof payload.scope !== 'string') {
        throw new HubError('unauthenticated', 'The access token is not valid');
      }
      return {
        clientId: payload.sub,
        workspaceId: payload.ws,
        scopes: payload.scope.split(' ').filter(Boolean),
        expiresAt: (payload.exp ?? 0) * 1000,
      };
    },

    async jwks() {
      return { keys: [...(await getKeys()).values()].map((k) => k.publicJwk) };
    },
  };
}
