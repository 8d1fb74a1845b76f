// Signing a request and verifying a receipt, in Java 17 with the JDK alone (docs/channels.md, docs/receipts.md).
// Copy the static methods; main() only checks them against docs/vectors (tests/e2e/test_examples.py runs it):
//   sign<TAB>secret<TAB>method<TAB>pathAndQuery<TAB>timestamp<TAB>nonce<TAB>body base64    -> the signature
//   verify<TAB>public key x (base64url)<TAB>invoice key<TAB>channel<TAB>receipt           -> valid <ms> | invalid
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Signing {
    /** The four headers of a request: pathAndQuery exactly as sent (no "?" without a query). */
    static Map<String, String> headers(String clientId, String secret, String method, String pathAndQuery,
                                       long timestamp, String nonce, byte[] body) throws Exception {
        String ts = Long.toString(timestamp);
        return Map.of("X-Client-Id", clientId, "X-Timestamp", ts, "X-Nonce", nonce,
                      "X-Signature", signature(secret, method, pathAndQuery, ts, nonce, body));
    }

    static String signature(String secret, String method, String pathAndQuery, String timestamp, String nonce,
                            byte[] body) throws Exception {
        String canonical = String.join("\n", method.toUpperCase(), pathAndQuery, timestamp, nonce, sha256Hex(body));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        return HexFormat.of().formatHex(mac.doFinal(canonical.getBytes(StandardCharsets.UTF_8)));
    }

    static String sha256Hex(byte[] data) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }

    /** The time (Unix ms) a receipt proves, or -1: x is the key's "x" in GET /v1/keys (base64url). */
    static long verifyReceipt(String x, String key, String channel, String receipt) throws Exception {
        String[] parts = receipt.split("\\.", -1);
        if (parts.length != 5 || !parts[0].equals("v2") || !parts[2].matches("[0-9]{1,16}")) return -1;
        byte[] path = Base64.getUrlDecoder().decode(parts[4]);
        if (path.length % 33 != 0) return -1;
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        sha.update((byte) 0);
        byte[] node = sha.digest(key.getBytes(StandardCharsets.UTF_8));
        for (int at = 0; at < path.length; at += 33) {
            byte side = path[at];
            if (side != 0 && side != 1) return -1;
            sha.update((byte) 1);
            if (side == 0) { sha.update(path, at + 1, 32); sha.update(node); }
            else { sha.update(node); sha.update(path, at + 1, 32); }
            node = sha.digest();
        }
        String signed = String.join("\n", "prize-invoice-receipt v2", parts[1], channel, parts[2],
                                    HexFormat.of().formatHex(node));
        byte[] der = HexFormat.of().parseHex("302a300506032b6570032100");  // X.509 prefix of an Ed25519 key
        byte[] raw = Base64.getUrlDecoder().decode(x);
        byte[] spki = new byte[der.length + raw.length];
        System.arraycopy(der, 0, spki, 0, der.length);
        System.arraycopy(raw, 0, spki, der.length, raw.length);
        PublicKey publicKey = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(spki));
        Signature verifier = Signature.getInstance("Ed25519");
        verifier.initVerify(publicKey);
        verifier.update(signed.getBytes(StandardCharsets.UTF_8));
        return verifier.verify(Base64.getUrlDecoder().decode(parts[3])) ? Long.parseLong(parts[2]) : -1;
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.split("\t", -1);
            if (f[0].equals("sign")) {
                System.out.println(signature(f[1], f[2], f[3], f[4], f[5], Base64.getDecoder().decode(f[6])));
            } else {
                long at = verifyReceipt(f[1], f[2], f[3], f[4]);
                System.out.println(at >= 0 ? "valid " + at : "invalid");
            }
        }
    }
}
