/*
 * DatabusClient: a single-file Databus portal client for third parties.
 *
 * JDK only (javax.crypto, java.security, java.net.http), Java 11 or newer,
 * runnable without a build step in source-file mode:
 *
 *   java DatabusClient.java call --url http://127.0.0.1:8080/admin-api/databus/api/portal \
 *        --app demo-app --key databus-demo-key --api demo.hello:v1 --body '{"name":"Ada"}'
 *   java DatabusClient.java vectors ../../../engine/security/testdata/wire.json
 *
 * Copy the static methods signString, sign, encryptWire and decryptWire into
 * your own code: they are the whole wire protocol (DESIGN.md section 4).
 *
 * The wire protocol, as this client implements it
 * ------------------------------------------------
 * Headers: ZT-App-Id, ZT-Timestamp (milliseconds since the epoch), ZT-Nonce
 * (8 to 128 characters, never reused; this client sends 16 random hex digits),
 * ZT-Signature, and ZT-Tenant-Id when a tenant is given.
 *
 * String to sign: the fields appId, timestamp, nonce, body and every query
 * parameter, as key=value joined with '&', sorted by key in byte order.
 *   - body is the PLAINTEXT body, byte for byte as it is encrypted; it is left
 *     out entirely (no "body=") when the body is empty.
 *   - query parameters are signed DECODED ('+' is a space, %XX a byte), as the
 *     gateway reads them; the values of a repeated key are joined with ','
 *     in the order they appear; the key "signature" is skipped; the keys
 *     appId, timestamp, nonce and body are refused (the gateway refuses them
 *     too, so a request using them could never verify).
 *   - "byte order" is the order of the UTF-8 bytes of the keys. Java's
 *     String.compareTo orders by UTF-16 code units, which agrees with byte
 *     order for ASCII keys (and all of the BMP below U+E000) but not for
 *     supplementary characters against U+E000..U+FFFF. This client does not
 *     rely on that: it keeps the fields as UTF-8 byte arrays and sorts them
 *     with Arrays.compareUnsigned, which is byte order for any key.
 * Signature: MD5 or SHA256 of the string (lowercase hex), or HMAC-SHA256 keyed
 * with the signature key (defaults to the encryption key), lowercase hex.
 *
 * Encryption (key = the UTF-8 bytes of the credential's key):
 *   AES     AES/ECB/PKCS5Padding, key of 16, 24 or 32 bytes
 *   DES     DES/ECB/PKCS5Padding with the first 8 bytes of the key
 *   AES-GCM AES/GCM/NoPadding, 128-bit tag, a random 12-byte nonce prepended
 *           to ciphertext+tag
 *   NONE    the body is sent as it is (Content-Type application/json)
 * An encrypted body is sent as standard Base64 with Content-Type text/plain.
 * An answer with Content-Type text/plain is the encrypted envelope (Base64);
 * application/json is the plaintext envelope (errors raised before the
 * gateway knows the caller's credential are always plaintext).
 *
 * Envelope: {"code":200,"message":"OK","response":{...},"traceId":"..."};
 * code equals the HTTP status. `call` exits 0 when code is 200, 1 for any
 * other code, 2 for a usage error or bad input (key length, reserved query
 * name, ...), 3 when the call could not be made or the answer could not be
 * read.
 */

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public class DatabusClient {

    static final String DEFAULT_URL = "http://127.0.0.1:8080/admin-api/databus/api/portal";

    static final String USAGE = String.join("\n",
            "usage:",
            "  java DatabusClient.java call --app ID (--key KEY | --key-file PATH) --api CODE[:VERSION] [options]",
            "  java DatabusClient.java vectors PATH/wire.json",
            "",
            "call options:",
            "  --url BASEURL          portal base URL (default " + DEFAULT_URL + ")",
            "  --app ID               appId (ZT-App-Id)",
            "  --key KEY              encryption key (its UTF-8 bytes are the key)",
            "  --key-file PATH        file holding the key (one trailing newline dropped)",
            "  --sign-key K           HMAC key (default: the encryption key)",
            "  --sign-key-file PATH   file holding the HMAC key",
            "  --sign-type T          HMAC-SHA256 (default) | SHA256 | MD5",
            "  --enc-type T           AES (default) | DES | AES-GCM | NONE",
            "  --api CODE[:VERSION]   e.g. demo.hello:v1 (version defaults to v1)",
            "  --method M             HTTP method (default POST)",
            "  --body JSON            request body (plaintext; encrypted by the client)",
            "  --body-file PATH       file holding the body",
            "  --query K=V            query parameter, unencoded (repeatable)",
            "  --tenant ID            ZT-Tenant-Id",
            "  --nonce N              fixed nonce (default: 16 random hex digits)",
            "  --timestamp MS         fixed timestamp (default: now)",
            "  --timeout SECONDS      request timeout (default 30)",
            "  -v, --verbose          print the sign string, headers and wire body to stderr");

    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args);
        } catch (UsageException e) {
            System.err.println("DatabusClient: " + e.getMessage());
            System.err.println(USAGE);
            rc = 2;
        } catch (IllegalArgumentException e) {
            // Bad input: key length, reserved query name, unknown algorithm, bad JSON.
            System.err.println("DatabusClient: " + e.getMessage());
            rc = 2;
        } catch (Exception e) {
            System.err.println("DatabusClient: " + e);
            rc = 3;
        }
        System.exit(rc);
    }

    static int run(String[] args) throws Exception {
        if (args.length == 0) {
            throw new UsageException("name a mode: call or vectors");
        }
        switch (args[0]) {
            case "call":
                return call(Arrays.copyOfRange(args, 1, args.length));
            case "vectors":
                if (args.length != 2) {
                    throw new UsageException("vectors takes one argument: the path of wire.json");
                }
                return vectors(args[1]);
            case "-h":
            case "--help":
            case "help":
                System.out.println(USAGE);
                return 0;
            default:
                throw new UsageException("unknown mode " + args[0]);
        }
    }

    // ------------------------------------------------------------------
    // The wire protocol
    // ------------------------------------------------------------------

    /**
     * Builds the string to sign (UTF-8 bytes). rawQuery is the query string
     * exactly as it is sent on the URL (percent-encoded, without '?'), or
     * null/empty; body is the plaintext body (null or empty: no body).
     */
    static byte[] signString(String appId, String timestamp, String nonce, byte[] body, String rawQuery) {
        // Keys and values as UTF-8 bytes, sorted by unsigned byte comparison:
        // the byte order DESIGN.md asks for, whatever the characters.
        TreeMap<byte[], byte[]> fields = new TreeMap<>(Arrays::compareUnsigned);
        fields.put(utf8("appId"), utf8(appId));
        fields.put(utf8("timestamp"), utf8(timestamp));
        fields.put(utf8("nonce"), utf8(nonce));
        if (body != null && body.length > 0) {
            fields.put(utf8("body"), body);
        }
        for (Map.Entry<String, List<byte[]>> e : parseQuery(rawQuery).entrySet()) {
            String k = e.getKey();
            if (k.equals("signature")) {
                continue;
            }
            if (k.equals("appId") || k.equals("timestamp") || k.equals("nonce") || k.equals("body")) {
                throw new IllegalArgumentException("query parameter name " + k
                        + " is reserved by the signature (appId, timestamp, nonce, body)");
            }
            ByteArrayOutputStream v = new ByteArrayOutputStream();
            List<byte[]> values = e.getValue();
            for (int i = 0; i < values.size(); i++) {
                if (i > 0) {
                    v.write(',');
                }
                v.writeBytes(values.get(i));
            }
            fields.put(latin1Bytes(k), v.toByteArray());
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        boolean first = true;
        for (Map.Entry<byte[], byte[]> f : fields.entrySet()) {
            if (!first) {
                out.write('&');
            }
            first = false;
            out.writeBytes(f.getKey());
            out.write('=');
            out.writeBytes(f.getValue());
        }
        return out.toByteArray();
    }

    /**
     * Parses a raw query as the gateway does (Go's url.ParseQuery): pieces
     * split on '&', empty pieces skipped, key and value split at the first
     * '=', both percent-decoded ('+' is a space). Keys are returned as
     * "byte strings" (one char per decoded byte, ISO-8859-1), values as the
     * decoded bytes; repeated keys keep their values in order.
     */
    static Map<String, List<byte[]>> parseQuery(String raw) {
        Map<String, List<byte[]>> q = new LinkedHashMap<>();
        if (raw == null || raw.isEmpty()) {
            return q;
        }
        if (raw.indexOf(';') >= 0) {
            // Go's url.ParseQuery rejects semicolons: the gateway would answer 401.
            throw new IllegalArgumentException("a query with ';' is refused by the gateway; encode it as %3B");
        }
        for (String piece : raw.split("&", -1)) {
            if (piece.isEmpty()) {
                continue;
            }
            int eq = piece.indexOf('=');
            String k = eq < 0 ? piece : piece.substring(0, eq);
            String v = eq < 0 ? "" : piece.substring(eq + 1);
            String key = new String(percentDecode(k), StandardCharsets.ISO_8859_1);
            q.computeIfAbsent(key, x -> new ArrayList<>()).add(percentDecode(v));
        }
        return q;
    }

    /** Decodes %XX escapes and '+' to bytes; anything else is taken as UTF-8. */
    static byte[] percentDecode(String s) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%') {
                if (i + 2 >= s.length() || Character.digit(s.charAt(i + 1), 16) < 0
                        || Character.digit(s.charAt(i + 2), 16) < 0) {
                    throw new IllegalArgumentException("bad percent escape in query: " + s);
                }
                out.write(Character.digit(s.charAt(i + 1), 16) << 4 | Character.digit(s.charAt(i + 2), 16));
                i += 2;
            } else if (c == '+') {
                out.write(' ');
            } else if (c < 0x80) {
                out.write(c);
            } else {
                int end = Character.isHighSurrogate(c) && i + 1 < s.length() ? i + 2 : i + 1;
                out.writeBytes(s.substring(i, end).getBytes(StandardCharsets.UTF_8));
                i = end - 1;
            }
        }
        return out.toByteArray();
    }

    /** Encodes unencoded k=v pairs as a query string (space as '+', like Go). */
    static String encodeQuery(List<String> pairs) {
        StringBuilder b = new StringBuilder();
        for (String kv : pairs) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new UsageException("--query " + kv + ": expected K=V");
            }
            if (b.length() > 0) {
                b.append('&');
            }
            b.append(URLEncoder.encode(kv.substring(0, eq), StandardCharsets.UTF_8)).append('=')
                    .append(URLEncoder.encode(kv.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return b.toString();
    }

    /** Signs s: MD5 / SHA256 / HMAC-SHA256, lowercase hex. */
    static String sign(String signType, byte[] signKey, byte[] s) throws GeneralSecurityException {
        switch (signType) {
            case "MD5":
                return hex(MessageDigest.getInstance("MD5").digest(s));
            case "SHA256":
                return hex(MessageDigest.getInstance("SHA-256").digest(s));
            case "HMAC-SHA256":
                if (signKey == null || signKey.length == 0) {
                    throw new IllegalArgumentException("HMAC-SHA256 needs a key (--sign-key or --key)");
                }
                Mac mac = Mac.getInstance("HmacSHA256");
                mac.init(new SecretKeySpec(signKey, "HmacSHA256"));
                return hex(mac.doFinal(s));
            default:
                throw new IllegalArgumentException("unknown signature type " + signType
                        + " (MD5, SHA256 or HMAC-SHA256)");
        }
    }

    /**
     * Encrypts plain into the wire form: standard Base64 of the ciphertext
     * (NONE: plain unchanged). gcmNonce is the 12-byte AES-GCM nonce; null
     * draws a random one (always, except to reproduce known answers).
     */
    static byte[] encryptWire(String encType, byte[] key, byte[] plain, byte[] gcmNonce)
            throws GeneralSecurityException {
        if (encType.equals("NONE")) {
            return plain;
        }
        byte[] ct;
        switch (encType) {
            case "AES": {
                Cipher c = Cipher.getInstance("AES/ECB/PKCS5Padding");
                c.init(Cipher.ENCRYPT_MODE, aesKey(encType, key));
                ct = c.doFinal(plain);
                break;
            }
            case "DES": {
                Cipher c = Cipher.getInstance("DES/ECB/PKCS5Padding");
                c.init(Cipher.ENCRYPT_MODE, desKey(key));
                ct = c.doFinal(plain);
                break;
            }
            case "AES-GCM": {
                byte[] nonce = gcmNonce;
                if (nonce == null) {
                    nonce = new byte[12];
                    RANDOM.nextBytes(nonce);
                }
                if (nonce.length != 12) {
                    throw new IllegalArgumentException("the AES-GCM nonce must be 12 bytes");
                }
                Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
                c.init(Cipher.ENCRYPT_MODE, aesKey(encType, key), new GCMParameterSpec(128, nonce));
                byte[] sealed = c.doFinal(plain);
                ct = new byte[nonce.length + sealed.length];
                System.arraycopy(nonce, 0, ct, 0, nonce.length);
                System.arraycopy(sealed, 0, ct, nonce.length, sealed.length);
                break;
            }
            default:
                throw new IllegalArgumentException("unknown encryption type " + encType
                        + " (AES, DES, AES-GCM or NONE)");
        }
        return Base64.getEncoder().encode(ct);
    }

    /** Decodes and decrypts a wire body (surrounding white space ignored). */
    static byte[] decryptWire(String encType, byte[] key, byte[] wire) throws GeneralSecurityException {
        if (encType.equals("NONE")) {
            return wire;
        }
        String text = new String(wire, StandardCharsets.US_ASCII).trim();
        if (text.isEmpty()) {
            return new byte[0];
        }
        byte[] ct = Base64.getDecoder().decode(text);
        switch (encType) {
            case "AES": {
                Cipher c = Cipher.getInstance("AES/ECB/PKCS5Padding");
                c.init(Cipher.DECRYPT_MODE, aesKey(encType, key));
                return c.doFinal(ct);
            }
            case "DES": {
                Cipher c = Cipher.getInstance("DES/ECB/PKCS5Padding");
                c.init(Cipher.DECRYPT_MODE, desKey(key));
                return c.doFinal(ct);
            }
            case "AES-GCM": {
                if (ct.length < 12 + 16) {
                    throw new GeneralSecurityException("AES-GCM ciphertext too short");
                }
                Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
                c.init(Cipher.DECRYPT_MODE, aesKey(encType, key), new GCMParameterSpec(128, ct, 0, 12));
                return c.doFinal(ct, 12, ct.length - 12);
            }
            default:
                throw new IllegalArgumentException("unknown encryption type " + encType);
        }
    }

    static SecretKeySpec aesKey(String encType, byte[] key) {
        if (key == null || (key.length != 16 && key.length != 24 && key.length != 32)) {
            throw new IllegalArgumentException(encType + " key must be 16, 24 or 32 bytes, got "
                    + (key == null ? 0 : key.length));
        }
        return new SecretKeySpec(key, "AES");
    }

    static SecretKeySpec desKey(byte[] key) {
        if (key == null || key.length < 8) {
            throw new IllegalArgumentException("DES key must be at least 8 bytes, got "
                    + (key == null ? 0 : key.length));
        }
        return new SecretKeySpec(Arrays.copyOf(key, 8), "DES");
    }

    // ------------------------------------------------------------------
    // call
    // ------------------------------------------------------------------

    static final SecureRandom RANDOM = new SecureRandom();

    static int call(String[] args) throws Exception {
        Map<String, String> o = new LinkedHashMap<>();
        List<String> query = new ArrayList<>();
        boolean verbose = false;
        List<String> valued = Arrays.asList("--url", "--app", "--key", "--key-file", "--sign-key",
                "--sign-key-file", "--sign-type", "--enc-type", "--api", "--method", "--body", "--body-file",
                "--query", "--tenant", "--nonce", "--timestamp", "--timeout");
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                v = a.substring(eq + 1);
                a = a.substring(0, eq);
            }
            if (a.equals("-v") || a.equals("--verbose")) {
                verbose = true;
                continue;
            }
            if (!valued.contains(a)) {
                throw new UsageException("unknown argument " + args[i]);
            }
            if (v == null) {
                if (i + 1 >= args.length) {
                    throw new UsageException(a + " needs a value");
                }
                v = args[++i];
            }
            if (a.equals("--query")) {
                query.add(v);
            } else {
                o.put(a, v);
            }
        }

        String app = o.get("--app");
        if (app == null || app.isEmpty()) {
            throw new UsageException("--app is required");
        }
        String api = o.get("--api");
        if (api == null || api.isEmpty()) {
            throw new UsageException("--api is required (e.g. demo.hello:v1)");
        }
        String signType = o.getOrDefault("--sign-type", "HMAC-SHA256").toUpperCase(Locale.ROOT);
        String encType = o.getOrDefault("--enc-type", "AES").toUpperCase(Locale.ROOT);
        byte[] key = secret(o, "--key", "--key-file");
        byte[] signKey = secret(o, "--sign-key", "--sign-key-file");
        if (signKey == null) {
            signKey = key;
        }
        if (key == null && !encType.equals("NONE")) {
            throw new UsageException("--key or --key-file is required for encryption type " + encType);
        }
        byte[] body;
        if (o.containsKey("--body") && o.containsKey("--body-file")) {
            throw new UsageException("give --body or --body-file, not both");
        } else if (o.containsKey("--body-file")) {
            body = Files.readAllBytes(Paths.get(o.get("--body-file")));
        } else {
            body = utf8(o.getOrDefault("--body", ""));
        }
        String method = o.getOrDefault("--method", "POST").toUpperCase(Locale.ROOT);
        String base = o.getOrDefault("--url", DEFAULT_URL);
        while (base.endsWith("/")) {
            base = base.substring(0, base.length() - 1);
        }
        String code = api;
        String version = "v1";
        int colon = api.indexOf(':');
        if (colon >= 0) {
            code = api.substring(0, colon);
            if (colon + 1 < api.length()) {
                version = api.substring(colon + 1);
            }
        }
        String rawQuery = encodeQuery(query);
        String url = base + "/" + code + "/" + version + (rawQuery.isEmpty() ? "" : "?" + rawQuery);

        String timestamp = o.getOrDefault("--timestamp", Long.toString(System.currentTimeMillis()));
        String nonce = o.get("--nonce");
        if (nonce == null) {
            byte[] n = new byte[8];
            RANDOM.nextBytes(n);
            nonce = hex(n);
        }
        if (nonce.length() < 8) {
            throw new UsageException("the nonce must have at least 8 characters");
        }

        byte[] toSign = signString(app, timestamp, nonce, body, rawQuery);
        String signature = sign(signType, signKey, toSign);
        byte[] wire = body.length > 0 ? encryptWire(encType, key, body, null) : body;

        HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(Long.parseLong(o.getOrDefault("--timeout", "30"))))
                .header("ZT-App-Id", app)
                .header("ZT-Timestamp", timestamp)
                .header("ZT-Nonce", nonce)
                .header("ZT-Signature", signature);
        if (o.containsKey("--tenant")) {
            rb.header("ZT-Tenant-Id", o.get("--tenant"));
        }
        if (body.length > 0) {
            rb.header("Content-Type", encType.equals("NONE") ? "application/json" : "text/plain; charset=utf-8");
            rb.method(method, HttpRequest.BodyPublishers.ofByteArray(wire));
        } else {
            rb.method(method, HttpRequest.BodyPublishers.noBody());
        }
        if (verbose) {
            System.err.println("> " + method + " " + url);
            System.err.println("> sign string: " + new String(toSign, StandardCharsets.UTF_8));
            System.err.println("> ZT-App-Id: " + app);
            System.err.println("> ZT-Timestamp: " + timestamp);
            System.err.println("> ZT-Nonce: " + nonce);
            System.err.println("> ZT-Signature: " + signature);
            if (body.length > 0) {
                System.err.println("> body on the wire: " + new String(wire, StandardCharsets.UTF_8));
            }
        }

        HttpClient http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        HttpResponse<byte[]> resp;
        try {
            resp = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            System.err.println("DatabusClient: the request to " + url + " failed: " + e
                    + (e.getCause() != null ? " (" + e.getCause() + ")" : ""));
            return 3;
        }
        String contentType = resp.headers().firstValue("Content-Type").orElse("");
        byte[] envelope = resp.body();
        boolean encrypted = contentType.toLowerCase(Locale.ROOT).startsWith("text/plain") && !encType.equals("NONE");
        if (verbose) {
            System.err.println("< HTTP " + resp.statusCode() + ", Content-Type: " + contentType
                    + (encrypted ? " (encrypted envelope)" : ""));
        }
        if (encrypted) {
            try {
                envelope = decryptWire(encType, key, envelope);
            } catch (GeneralSecurityException | IllegalArgumentException e) {
                System.err.println("DatabusClient: HTTP " + resp.statusCode()
                        + ": the answer does not decrypt with this key: " + e);
                return 3;
            }
        }
        PrintStream out = System.out;
        out.write(envelope, 0, envelope.length);
        out.println();
        out.flush();
        Object code200;
        try {
            Object parsed = Json.parse(new String(envelope, StandardCharsets.UTF_8));
            code200 = parsed instanceof Map ? ((Map<?, ?>) parsed).get("code") : null;
        } catch (IllegalArgumentException e) {
            System.err.println("DatabusClient: HTTP " + resp.statusCode() + ": the answer is not an envelope: " + e.getMessage());
            return 3;
        }
        if (!(code200 instanceof Number)) {
            System.err.println("DatabusClient: HTTP " + resp.statusCode() + ": the envelope has no numeric code");
            return 3;
        }
        int envCode = ((Number) code200).intValue();
        if (envCode != resp.statusCode()) {
            System.err.println("DatabusClient: warning: envelope code " + envCode + " differs from HTTP status " + resp.statusCode());
        }
        return envCode == 200 ? 0 : 1;
    }

    /** Reads a key from --NAME (its UTF-8 bytes) or --NAME-file (one trailing newline dropped, as the gateway does). */
    static byte[] secret(Map<String, String> o, String flag, String fileFlag) throws IOException {
        if (o.containsKey(flag) && o.containsKey(fileFlag)) {
            throw new UsageException("give " + flag + " or " + fileFlag + ", not both");
        }
        if (o.containsKey(flag)) {
            return utf8(o.get(flag));
        }
        if (o.containsKey(fileFlag)) {
            byte[] b = Files.readAllBytes(Paths.get(o.get(fileFlag)));
            int n = b.length;
            if (n > 0 && b[n - 1] == '\n') {
                n--;
            }
            if (n > 0 && b[n - 1] == '\r') {
                n--;
            }
            return Arrays.copyOf(b, n);
        }
        return null;
    }

    // ------------------------------------------------------------------
    // vectors
    // ------------------------------------------------------------------

    /** Reproduces every vector of wire.json; returns 1 on any mismatch. */
    static int vectors(String path) throws IOException {
        Object root = Json.parse(new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.UTF_8));
        if (!(root instanceof List) || ((List<?>) root).isEmpty()) {
            System.err.println("DatabusClient: " + path + ": expected a non-empty JSON array of vectors");
            return 1;
        }
        int n = 0;
        int failed = 0;
        for (Object item : (List<?>) root) {
            n++;
            Map<?, ?> v = (Map<?, ?>) item;
            String name = str(v, "name");
            List<String> bad = new ArrayList<>();
            try {
                checkVector(v, bad);
            } catch (Exception e) {
                bad.add("error: " + e);
            }
            if (bad.isEmpty()) {
                System.out.println("ok    " + name);
            } else {
                failed++;
                System.out.println("FAIL  " + name);
                for (String b : bad) {
                    System.out.println("      " + b);
                }
            }
        }
        System.out.println(n + " vectors, " + (n - failed) + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }

    static void checkVector(Map<?, ?> v, List<String> bad) throws GeneralSecurityException {
        String encType = str(v, "encryptionType");
        String signType = str(v, "signatureType");
        byte[] key = utf8(str(v, "encryptionKey"));
        byte[] signKey = utf8(str(v, "signatureKey"));
        if (signKey.length == 0) {
            signKey = key;
        }
        byte[] plain = utf8(str(v, "plainBody"));
        byte[] gcmNonce = null;
        Object nonceHex = v.get("gcmNonceHex");
        if (nonceHex instanceof String) {
            gcmNonce = unhex((String) nonceHex);
        } else if (encType.equals("AES-GCM")) {
            bad.add("AES-GCM vector without gcmNonceHex");
            return;
        }

        byte[] s = signString(str(v, "appId"), str(v, "timestamp"), str(v, "nonce"), plain, str(v, "query"));
        expect(bad, "signString", new String(s, StandardCharsets.UTF_8), str(v, "signString"));
        expect(bad, "signature", sign(signType, signKey, s), str(v, "signature"));

        byte[] wire = plain.length > 0 ? encryptWire(encType, key, plain, gcmNonce) : plain;
        expect(bad, "wireBody", new String(wire, StandardCharsets.UTF_8), str(v, "wireBody"));
        byte[] back = decryptWire(encType, key, utf8(str(v, "wireBody")));
        expect(bad, "wireBody decrypted", new String(back, StandardCharsets.UTF_8), str(v, "plainBody"));

        byte[] env = utf8(str(v, "envelope"));
        expect(bad, "encryptedEnvelope", new String(encryptWire(encType, key, env, gcmNonce), StandardCharsets.UTF_8),
                str(v, "encryptedEnvelope"));
        byte[] envBack = decryptWire(encType, key, utf8(str(v, "encryptedEnvelope")));
        expect(bad, "encryptedEnvelope decrypted", new String(envBack, StandardCharsets.UTF_8), str(v, "envelope"));
    }

    static void expect(List<String> bad, String field, String got, String want) {
        if (!got.equals(want)) {
            bad.add(field + ":\n        got  " + got + "\n        want " + want);
        }
    }

    static String str(Map<?, ?> m, String k) {
        Object v = m.get(k);
        if (v == null) {
            return "";
        }
        if (!(v instanceof String)) {
            throw new IllegalArgumentException("field " + k + " is not a string");
        }
        return (String) v;
    }

    // ------------------------------------------------------------------
    // helpers
    // ------------------------------------------------------------------

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static byte[] latin1Bytes(String byteString) {
        return byteString.getBytes(StandardCharsets.ISO_8859_1);
    }

    static final char[] HEX = "0123456789abcdef".toCharArray();

    static String hex(byte[] b) {
        char[] out = new char[b.length * 2];
        for (int i = 0; i < b.length; i++) {
            out[2 * i] = HEX[(b[i] >> 4) & 0xf];
            out[2 * i + 1] = HEX[b[i] & 0xf];
        }
        return new String(out);
    }

    static byte[] unhex(String s) {
        if (s.length() % 2 != 0) {
            throw new IllegalArgumentException("odd-length hex: " + s);
        }
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            int hi = Character.digit(s.charAt(2 * i), 16);
            int lo = Character.digit(s.charAt(2 * i + 1), 16);
            if (hi < 0 || lo < 0) {
                throw new IllegalArgumentException("bad hex: " + s);
            }
            out[i] = (byte) (hi << 4 | lo);
        }
        return out;
    }

    static final class UsageException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    /**
     * A tiny JSON reader: objects (LinkedHashMap), arrays (ArrayList),
     * strings, numbers (Long when integral, else Double), true, false, null.
     * Enough for wire.json and the envelope; not a general-purpose parser.
     */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json p = new Json(text);
            p.ws();
            Object v = p.value();
            p.ws();
            if (p.i != p.s.length()) {
                throw p.error("trailing characters");
            }
            return v;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("JSON: " + what + " at offset " + i);
        }

        private void ws() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    break;
                }
                i++;
            }
        }

        private Object value() {
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw error("unexpected '" + c + "'");
            }
        }

        private Object literal(String word, Object v) {
            if (!s.startsWith(word, i)) {
                throw error("expected " + word);
            }
            i += word.length();
            return v;
        }

        private Map<String, Object> object() {
            Map<String, Object> m = new LinkedHashMap<>();
            i++; // {
            ws();
            if (i < s.length() && s.charAt(i) == '}') {
                i++;
                return m;
            }
            while (true) {
                ws();
                if (i >= s.length() || s.charAt(i) != '"') {
                    throw error("expected a key");
                }
                String k = string();
                ws();
                if (i >= s.length() || s.charAt(i) != ':') {
                    throw error("expected ':'");
                }
                i++;
                ws();
                m.put(k, value());
                ws();
                if (i >= s.length()) {
                    throw error("unexpected end in object");
                }
                char c = s.charAt(i++);
                if (c == '}') {
                    return m;
                }
                if (c != ',') {
                    throw error("expected ',' or '}'");
                }
            }
        }

        private List<Object> array() {
            List<Object> a = new ArrayList<>();
            i++; // [
            ws();
            if (i < s.length() && s.charAt(i) == ']') {
                i++;
                return a;
            }
            while (true) {
                ws();
                a.add(value());
                ws();
                if (i >= s.length()) {
                    throw error("unexpected end in array");
                }
                char c = s.charAt(i++);
                if (c == ']') {
                    return a;
                }
                if (c != ',') {
                    throw error("expected ',' or ']'");
                }
            }
        }

        private String string() {
            i++; // opening quote
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return b.toString();
                }
                if (c < 0x20) {
                    throw error("control character in string");
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case '"':
                    case '\\':
                    case '/':
                        b.append(e);
                        break;
                    case 'b':
                        b.append('\b');
                        break;
                    case 'f':
                        b.append('\f');
                        break;
                    case 'n':
                        b.append('\n');
                        break;
                    case 'r':
                        b.append('\r');
                        break;
                    case 't':
                        b.append('\t');
                        break;
                    case 'u':
                        if (i + 4 > s.length()) {
                            throw error("short \\u escape");
                        }
                        try {
                            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw error("bad \\u escape");
                        }
                        i += 4; // surrogate pairs come as two escapes and join up in the UTF-16 string
                        break;
                    default:
                        throw error("bad escape \\" + e);
                }
            }
        }

        private Number number() {
            int start = i;
            if (s.charAt(i) == '-') {
                i++;
            }
            boolean integral = true;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c >= '0' && c <= '9') {
                    i++;
                } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    integral = false;
                    i++;
                } else {
                    break;
                }
            }
            String t = s.substring(start, i);
            try {
                if (integral) {
                    return Long.parseLong(t);
                }
                return Double.parseDouble(t);
            } catch (NumberFormatException x) {
                throw error("bad number " + t);
            }
        }
    }
}
