// The Java bindings (uniffi-bindgen-java, over JNA) against a real keysrv
// server: the same cases as sdk/python/tests/test_bindings.py. A plain
// main (no test framework on these machines): prints "N passed, M failed"
// and exits non-zero on any failure.
//
//   java --enable-preview -cp <jna.jar>:<classes> -Djna.library.path=<dir of libkeysrv_ffi.so> \
//        KeysrvJavaTest <keysrv binary>

import com.sun.net.httpserver.HttpServer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import uniffi.keysrv.*;

public class KeysrvJavaTest {
    static final String ROMEO = "romeo@montague.lit";
    static final String JULIET = "juliet@capulet.lit";
    static final String MERCUTIO = "mercutio@montague.lit";
    static final String ROOM = "verona@conference.montague.lit";

    static String bin;
    static Path data;
    static String url;
    static final Map<String, String> TOKENS = new ConcurrentHashMap<>();

    // -- Harness ------------------------------------------------------------

    interface Case { void run() throws Exception; }

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static void eq(Object expected, Object actual, String what) {
        if (!java.util.Objects.equals(expected, actual)) throw new AssertionError(what + ": expected " + expected + ", got " + actual);
    }

    static <T> T await(CompletableFuture<T> f) throws Exception {
        try {
            return f.get(60, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof Exception) throw (Exception) c;
            throw e;
        }
    }

    /** Runs `body`, which must throw an exception of `type`; returns it. */
    static <E extends Throwable> E raises(Class<E> type, Case body) throws Exception {
        try {
            body.run();
        } catch (Throwable t) {
            Throwable c = (t instanceof CompletionException && t.getCause() != null) ? t.getCause() : t;
            if (type.isInstance(c)) return type.cast(c);
            throw new AssertionError("expected " + type.getSimpleName() + ", got " + c, c);
        }
        throw new AssertionError("expected " + type.getSimpleName() + ", nothing was thrown");
    }

    static Map<String, String> env() {
        Map<String, String> env = new HashMap<>();
        System.getenv().forEach((k, v) -> { if (!k.startsWith("KEYSRV_")) env.put(k, v); });
        env.put("KEYSRV_QUOTAS", "create=0,rotate=0,members=0,files=0");
        env.put("KEYSRV_METRICS_LISTEN", "127.0.0.1:0");
        return env;
    }

    static Process startServer() throws Exception {
        data = Files.createTempDirectory("keysrv-java-test-");
        ProcessBuilder pb = new ProcessBuilder(bin, "server", "--listen", "127.0.0.1:0", "--data-dir", data.resolve("data").toString());
        pb.environment().clear();
        pb.environment().putAll(env());
        pb.redirectError(data.resolve("server.log").toFile());
        Process p = pb.start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line = r.readLine();
        String prefix = "keysrv listening on ";
        if (line == null || !line.startsWith(prefix)) throw new IllegalStateException("keysrv did not start: " + line);
        url = line.substring(prefix.length()).trim();
        Thread drain = new Thread(() -> { try { while (r.readLine() != null) {} } catch (Exception ignored) {} });
        drain.setDaemon(true);
        drain.start();
        return p;
    }

    static String token(String jid) {
        return TOKENS.computeIfAbsent(jid, j -> {
            try {
                ProcessBuilder pb = new ProcessBuilder(bin, "token", "--data-dir", data.resolve("data").toString(), j);
                pb.environment().clear();
                pb.environment().putAll(env());
                Process p = pb.start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
                if (p.waitFor() != 0) throw new IllegalStateException("keysrv token failed");
                return out;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
    }

    static class Tokens implements AccessTokenProvider {
        volatile String current;
        final String good;
        final boolean refreshWorks;
        final List<String> given = new CopyOnWriteArrayList<>();
        volatile int refreshes;

        Tokens(String first, String good, boolean refreshWorks) {
            this.current = first;
            this.good = good;
            this.refreshWorks = refreshWorks;
        }

        public CompletableFuture<String> token() {
            given.add(current);
            return CompletableFuture.completedFuture(current);
        }

        public CompletableFuture<Boolean> refresh() {
            refreshes++;
            if (refreshWorks) current = good;
            return CompletableFuture.completedFuture(refreshWorks);
        }
    }

    static class MapKeyCache implements KeyCache {
        final Map<String, StoredKey> keys = new ConcurrentHashMap<>();
        final List<String> calls = new CopyOnWriteArrayList<>();

        public StoredKey get(String objectid) { calls.add("get " + objectid); return keys.get(objectid); }
        public void put(StoredKey key) { calls.add("put " + key.objectid()); keys.put(key.objectid(), key); }
        public void remove(String objectid) { calls.add("remove " + objectid); keys.remove(objectid); }
        public void removeConversation(String id) { calls.add("remove_conversation " + id); keys.values().removeIf(k -> k.conversationId().equals(id)); }
        public void clear() { calls.add("clear"); keys.clear(); }
    }

    /** A proxy that records (method, path, batch size) and forwards to keysrv. */
    static class Proxy {
        final HttpServer server;
        final List<String> seen = new CopyOnWriteArrayList<>();
        final String url;

        Proxy() throws Exception {
            HttpClient http = HttpClient.newHttpClient();
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            server.createContext("/", ex -> {
                try {
                    byte[] body = ex.getRequestBody().readAllBytes();
                    String path = ex.getRequestURI().getRawPath();
                    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(KeysrvJavaTest.url + path))
                        .method(ex.getRequestMethod(), body.length == 0 ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
                    for (String h : List.of("Authorization", "Content-Type", "Accept", "Idempotency-Key")) {
                        String v = ex.getRequestHeaders().getFirst(h);
                        if (v != null) b.header(h, v);
                    }
                    HttpResponse<byte[]> resp = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
                    String size = "";
                    if (path.equals("/v1/keys/batch")) size = " " + new String(body, StandardCharsets.UTF_8).split(",", -1).length;
                    seen.add(ex.getRequestMethod() + " " + path + size);
                    resp.headers().firstValue("content-type").ifPresent(v -> ex.getResponseHeaders().add("content-type", v));
                    ex.sendResponseHeaders(resp.statusCode(), resp.body().length == 0 ? -1 : resp.body().length);
                    ex.getResponseBody().write(resp.body());
                } catch (Exception e) {
                    ex.sendResponseHeaders(502, -1);
                } finally {
                    ex.close();
                }
            });
            server.setExecutor(java.util.concurrent.Executors.newFixedThreadPool(4));
            server.start();
            url = "http://127.0.0.1:" + server.getAddress().getPort();
        }

        List<String> startingWith(String prefix) {
            List<String> out = new ArrayList<>();
            for (String s : seen) if (s.startsWith(prefix)) out.add(s);
            return out;
        }
    }

    static KeysrvClient client(String jid) throws Exception { return client(jid, url, null, null); }

    static KeysrvClient client(String jid, String via, AccessTokenProvider tokens, KeyCache cache) throws Exception {
        ClientConfig cfg = new ClientConfig(via, 30L, 3600L, 4096, 900L);
        return new KeysrvClient(cfg, tokens != null ? tokens : new Tokens(token(jid), token(jid), false), cache);
    }

    static MessageContent text(String body) { return new MessageContent(body, List.of(), List.of()); }

    static ReceiveContext ctx(String own) { return new ReceiveContext(own, null, null, null); }

    static String stanza(String element, String from, String to, String type) {
        return "<message xmlns='jabber:client' from='" + from + "' to='" + to + "' type='" + type + "' id='m1'>"
            + Keysrv.messageChildren(element) + "</message>";
    }

    static String chat(String element) { return stanza(element, ROMEO + "/orchard", JULIET + "/balcony", "chat"); }

    // -- Cases --------------------------------------------------------------

    static void conversationLifecycle() throws Exception {
        KeysrvClient romeo = client(ROMEO), juliet = client(JULIET);
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, "java-idem-1"));
        eq(created.conversationId(), await(romeo.createConversation(List.of(JULIET), History.SHARED, "java-idem-1")).conversationId(), "idempotent create");
        String cid = created.conversationId();
        Conversation shown = await(juliet.conversation(cid));
        eq(ROMEO, shown.owner(), "owner");
        eq(2, shown.members().size(), "members");
        eq(created.key().objectid(), shown.currentObjectid(), "current objectid");
        KeysrvException.Forbidden f = raises(KeysrvException.Forbidden.class, () -> await(juliet.deleteConversation(cid)));
        eq("owner", f.requiredRole(), "required role");
        await(romeo.deleteConversation(cid));
        juliet.clearCache();
        KeysrvException.NotFound nf = raises(KeysrvException.NotFound.class, () -> await(juliet.key(created.key().objectid())));
        eq("not-found", nf.problemType(), "problem type");
    }

    static void membersAndRoles() throws Exception {
        KeysrvClient romeo = client(ROMEO), juliet = client(JULIET), mercutio = client(MERCUTIO);
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SINCE_JOIN, null));
        String cid = created.conversationId();
        raises(KeysrvException.Forbidden.class, () -> await(juliet.addMember(cid, MERCUTIO, Role.MEMBER)));
        Member added = await(romeo.addMember(cid, "Mercutio@Montague.lit", Role.MEMBER));
        eq(MERCUTIO, added.jid(), "normalized JID");
        eq(Role.ADMIN, await(romeo.setMemberRole(cid, JULIET, Role.ADMIN)).role(), "promoted");
        ConversationKey current = await(mercutio.currentKey(cid));
        check(!current.objectid().equals(created.key().objectid()), "since_join rotated");
        raises(KeysrvException.NotFound.class, () -> await(mercutio.key(created.key().objectid())));
        eq("owner-cannot-leave", raises(KeysrvException.Conflict.class, () -> await(romeo.removeMember(cid, ROMEO))).problemType(), "conflict");
        String rotated = await(juliet.removeMember(cid, MERCUTIO));
        mercutio.forgetConversation(cid);
        raises(KeysrvException.NotFound.class, () -> await(mercutio.key(current.objectid())));
        eq(rotated, await(romeo.currentKey(cid)).objectid(), "rotated on removal");
    }

    static void keys() throws Exception {
        Proxy proxy = new Proxy();
        try {
            KeysrvClient romeo = client(ROMEO), juliet = client(JULIET, proxy.url, null, null);
            CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
            ConversationKey rotated = await(romeo.rotate(created.conversationId(), null));
            eq(rotated.objectid(), await(juliet.currentKey(created.conversationId())).objectid(), "current");
            eq(created.key().objectid(), await(juliet.key(created.key().objectid())).objectid(), "get");
            proxy.seen.clear();
            BatchKeys batch = await(juliet.keysBatch(List.of(created.key().objectid(), "nope.nope", rotated.objectid())));
            eq(2, batch.found().size(), "found");
            eq(List.of("nope.nope"), batch.missing(), "missing");
            eq(List.of("POST /v1/keys/batch 1"), proxy.startingWith("POST"), "only the uncached key asked for");
            eq(2L, juliet.cachedKeyCount(), "cached");
        } finally {
            proxy.server.stop(0);
        }
    }

    static void sealAndOpen() throws Exception {
        KeysrvClient romeo = client(ROMEO), juliet = client(JULIET);
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
        String element = created.key().seal(ROMEO, JULIET, text("Parting is such sweet sorrow"));
        eq(created.key().objectid(), Keysrv.encryptedObjectid(chat(element)), "objectid");
        OpenedMessage opened = await(juliet.openMessage(chat(element), ctx(JULIET)));
        eq("Parting is such sweet sorrow", opened.body(), "body");
        eq(ROMEO, opened.sender(), "sender");
        eq(Delivery.DIRECT, opened.delivery(), "delivery");
        check(Duration.between(opened.sentAt(), Instant.now()).abs().getSeconds() < 60, "time");
        String whole = created.key().sealStanza(ROMEO, JULIET, MessageType.CHAT, "m2", text("whole"));
        check(whole.contains(Keysrv.fallbackBody()) && whole.contains("urn:xmpp:eme:0") && whole.contains("urn:xmpp:hints"), "stanza children");
        String carbon = "<message xmlns='jabber:client' from='" + ROMEO + "' to='romeo@montague.lit/phone'><sent xmlns='urn:xmpp:carbons:2'>"
            + "<forwarded xmlns='urn:xmpp:forward:0'>" + chat(element) + "</forwarded></sent></message>";
        eq(Delivery.CARBON_SENT, await(romeo.openMessage(carbon, ctx(ROMEO))).delivery(), "carbon");
        eq("untrusted-wrapper", raises(KeysrvException.Refused.class,
            () -> await(romeo.openMessage(carbon.replaceFirst(ROMEO, "tybalt@capulet.lit"), ctx(ROMEO)))).kind(), "forged carbon");
        String result = "<message xmlns='jabber:client' to='juliet@capulet.lit/tablet'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='a1'>"
            + "<forwarded xmlns='urn:xmpp:forward:0'>" + chat(element) + "</forwarded></result></message>";
        eq(Delivery.ARCHIVED, await(juliet.openMessage(result, new ReceiveContext(JULIET, "q1", null, null))).delivery(), "archived");
        raises(KeysrvException.Refused.class, () -> await(juliet.openMessage(result, ctx(JULIET))));
    }

    static void openCached() throws Exception {
        Proxy proxy = new Proxy();
        try {
            KeysrvClient romeo = client(ROMEO), juliet = client(JULIET, proxy.url, null, null);
            CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
            String element = created.key().seal(ROMEO, JULIET, text("Good night, good night!"));
            check(juliet.openMessageCached(chat(element), ctx(JULIET)) == null, "nothing cached: openMessage's job");
            OpenedMessage first = await(juliet.openMessage(chat(element), ctx(JULIET)));
            proxy.seen.clear();
            OpenedMessage opened = juliet.openMessageCached(chat(element), ctx(JULIET + "/balcony"));
            eq(first, opened, "the same message as openMessage");
            eq("Good night, good night!", opened.body(), "body");
            eq("decrypt", raises(KeysrvException.IntegrityFailure.class,
                () -> juliet.openMessageCached(stanza(element, "mercutio@montague.lit/x", JULIET, "chat"), ctx(JULIET))).kind(), "integrity");
            String result = "<message xmlns='jabber:client' to='juliet@capulet.lit/tablet'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='a1'>"
                + "<forwarded xmlns='urn:xmpp:forward:0'>" + chat(element) + "</forwarded></result></message>";
            eq("untrusted-wrapper", raises(KeysrvException.Refused.class, () -> juliet.openMessageCached(result, ctx(JULIET))).kind(), "archive without query");
            eq(Delivery.ARCHIVED, juliet.openMessageCached(result, new ReceiveContext(JULIET, "q1", null, null)).delivery(), "archived");
            eq(List.of(), proxy.seen, "no request");
            String forged = stanza(created.key().seal(MERCUTIO, JULIET, text("It is I")), MERCUTIO + "/street", JULIET, "chat");
            check(juliet.openMessageCached(forged, ctx(JULIET)) == null, "an unknown sender is left to openMessage");
            eq("sender-not-member", raises(KeysrvException.Refused.class, () -> await(juliet.openMessage(forged, ctx(JULIET)))).kind(), "refused");
        } finally {
            proxy.server.stop(0);
        }
    }

    static void sealerAndReceiver() throws Exception {
        Proxy proxy = new Proxy();
        try {
            KeysrvClient romeo = client(ROMEO), juliet = client(JULIET, proxy.url, null, null);
            CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
            Sealer sealer = created.key().sealer(ROMEO + "/orchard", "Juliet@Capulet.lit");
            eq(created.key().objectid(), sealer.key().objectid(), "the sealer's key");
            String first = sealer.sealText("Good night");
            String reply = "<reply xmlns='urn:xmpp:reply:0' id='m0' to='juliet@capulet.lit'/>";
            String second = sealer.seal(new MessageContent("with a reply", List.of(), List.of(reply)));
            eq(2L, created.key().sealedCount(), "counted against the key");
            Receiver inbox = juliet.receiver(ctx(JULIET + "/balcony"));
            check(inbox.openCached(chat(first)) == null, "nothing cached yet");
            OpenedMessage opened = await(inbox.open(chat(first)));
            eq("Good night", opened.body(), "body");
            eq(JULIET, opened.recipient(), "recipient");
            proxy.seen.clear();
            OpenedMessage withReply = inbox.openCached(chat(second));
            eq(List.of(reply), withReply.extra(), "extra");
            eq(List.of(), proxy.seen, "no request");
            raises(KeysrvException.IntegrityFailure.class, () -> inbox.openCached(stanza(first, MERCUTIO + "/x", JULIET, "chat")));
            eq("invalid-jid", raises(KeysrvException.InvalidInput.class, () -> created.key().sealer("romeo@@", JULIET)).kind(), "bad JID");
            raises(KeysrvException.TooLarge.class, () -> sealer.sealText("x".repeat(70000)));
        } finally {
            proxy.server.stop(0);
        }
    }

    static void rooms() throws Exception {
        KeysrvClient romeo = client(ROMEO), juliet = client(JULIET), mercutio = client(MERCUTIO);
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET, MERCUTIO), History.SHARED, null));
        String live = stanza(created.key().seal(ROMEO, ROOM, text("A plague")), ROOM + "/Romeo", JULIET, "groupchat");
        eq("missing-context", raises(KeysrvException.InvalidInput.class, () -> await(juliet.openMessage(live, ctx(JULIET)))).kind(), "no real JID");
        OpenedMessage opened = await(juliet.openMessage(live, new ReceiveContext(JULIET, null, null, ROMEO + "/orchard")));
        eq(ROOM, opened.recipient(), "room");
        eq(created.conversationId(), juliet.roomConversation(ROOM), "bound");
        CreatedConversation other = await(mercutio.createConversation(List.of(JULIET, ROMEO), History.SHARED, null));
        String forged = stanza(other.key().seal(MERCUTIO, ROOM, text("hi")), ROOM + "/Mercutio", JULIET, "groupchat");
        eq("conversation-mismatch", raises(KeysrvException.Refused.class,
            () -> await(juliet.openMessage(forged, new ReceiveContext(JULIET, null, null, MERCUTIO)))).kind(), "other conversation");
        eq(created.conversationId(), await(juliet.keyForChat(JULIET, ROOM, MessageType.GROUPCHAT)).conversationId(), "key for room");
        check(await(romeo.keyForChat(ROMEO, "tybalt@capulet.lit", MessageType.CHAT)) == null, "no conversation yet");
        romeo.bindPeer(ROMEO, JULIET, created.conversationId());
        eq(created.conversationId(), romeo.peerConversation(ROMEO, JULIET), "peer binding");
        juliet.unbindRoom(ROOM);
        check(juliet.roomConversation(ROOM) == null, "unbound");
        juliet.bindRoom(ROOM, other.conversationId());
        eq(other.conversationId(), juliet.roomConversation(ROOM), "rebound");
    }

    static void openMessagesBatches() throws Exception {
        Proxy proxy = new Proxy();
        try {
            KeysrvClient romeo = client(ROMEO), tablet = client(JULIET, proxy.url, null, null);
            CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
            ConversationKey key = created.key();
            List<String> stanzas = new ArrayList<>();
            for (int i = 0; i < 150; i++) {
                if (i > 0 && i < 120) key = await(romeo.rotate(created.conversationId(), null));
                stanzas.add(chat(key.seal(ROMEO, JULIET, text("line " + i))));
            }
            stanzas.add(chat("<encrypted xmlns='jabber:encrypted' objectid='nope.nope'>AQID</encrypted>"));
            proxy.seen.clear();
            List<OpenOutcome> out = await(tablet.openMessages(stanzas, ctx(JULIET)));
            for (int i = 0; i < 150; i++) eq("line " + i, out.get(i).message().body(), "message " + i);
            check(out.get(150).error() instanceof KeysrvException.NotFound, "missing key: " + out.get(150).error());
            eq(List.of("POST /v1/keys/batch 100", "POST /v1/keys/batch 21"), proxy.startingWith("POST /v1/keys/batch"), "one batch per 100 keys");
            eq(1, proxy.startingWith("GET /v1/conversations/").size(), "member list once");
        } finally {
            proxy.server.stop(0);
        }
    }

    static void files() throws Exception {
        KeysrvClient romeo = client(ROMEO), juliet = client(JULIET);
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
        String cid = created.conversationId();
        byte[] data = new byte[48213];
        for (int i = 0; i < data.length; i++) data[i] = (byte) ((i * 2654435761L) >> 13);
        FileRef ref = await(romeo.uploadFile(cid, "image/png", data));
        eq(Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-256").digest(data)), ref.sha256(), "sha256");
        eq(Long.valueOf(data.length), ref.size(), "size");
        OpenedMessage opened = await(juliet.openMessage(chat(created.key().seal(ROMEO, JULIET,
            new MessageContent("the map", List.of(ref), List.of()))), ctx(JULIET)));
        eq(List.of(ref), opened.files(), "reference");
        check(java.util.Arrays.equals(data, await(juliet.downloadFile(opened.files().get(0)))), "bytes");
        Path dir = Files.createTempDirectory("keysrv-java-files-");
        Path src = dir.resolve("letter.txt");
        Files.write(src, "Good night! ".repeat(2000).getBytes(StandardCharsets.UTF_8));
        FileRef fromPath = await(romeo.uploadFileFromPath(cid, "text/plain", src.toString()));
        eq("letter.txt", fromPath.name(), "name");
        eq(24000L, await(juliet.downloadFileToPath(fromPath, dir.resolve("copy.txt").toString())), "written");
        check(java.util.Arrays.equals(Files.readAllBytes(src), Files.readAllBytes(dir.resolve("copy.txt"))), "copied");
        FileRef bad = new FileRef(fromPath.id(), null, null, 24000L, ref.sha256());
        eq("sha256-mismatch", raises(KeysrvException.IntegrityFailure.class,
            () -> await(juliet.downloadFileToPath(bad, dir.resolve("bad.txt").toString()))).kind(), "hash checked");
        check(!Files.exists(dir.resolve("bad.txt")), "nothing written on failure");
        FileUpload grant = await(romeo.registerFile(cid, "application/pdf", 10L));
        eq("PUT", grant.method(), "grant method");
        eq(ROMEO, await(juliet.fileDownload(ref.id())).uploader(), "uploader");
        await(romeo.deleteFile(ref.id()));
        raises(KeysrvException.NotFound.class, () -> await(juliet.downloadFile(ref)));
    }

    static void errors() throws Exception {
        KeysrvClient romeo = client(ROMEO), juliet = client(JULIET);
        eq("invalid-jid", raises(KeysrvException.BadRequest.class,
            () -> await(romeo.createConversation(List.of("not a jid@@"), History.SHARED, null))).problemType(), "bad request");
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
        eq("invalid-jid", raises(KeysrvException.InvalidInput.class, () -> created.key().seal("romeo@@", JULIET, text("x"))).kind(), "local input");
        raises(KeysrvException.TooLarge.class, () -> created.key().seal(ROMEO, JULIET, text("x".repeat(70000))));
        String element = created.key().seal(ROMEO, JULIET, text("authentic"));
        String wrongSender = stanza(element, "mercutio@montague.lit/x", JULIET, "chat");
        eq("decrypt", raises(KeysrvException.IntegrityFailure.class, () -> await(juliet.openMessage(wrongSender, ctx(JULIET)))).kind(), "integrity");
        raises(KeysrvException.Config.class, () -> new KeysrvClient(new ClientConfig("ftp://nowhere", 30L, 3600L, 4096, 900L), new Tokens("t", "t", false), null));
        KeysrvClient dead = new KeysrvClient(new ClientConfig("http://127.0.0.1:9", 5L, 60L, 16, 0L), new Tokens("t", "t", false), null);
        raises(KeysrvException.Network.class, () -> await(dead.currentKey(created.conversationId())));
    }

    static void tokenRefresh() throws Exception {
        Tokens tokens = new Tokens("expired.token.value", token(ROMEO), true);
        KeysrvClient romeo = client(ROMEO, url, tokens, null);
        CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
        eq(1, tokens.refreshes, "refreshed once");
        eq(List.of("expired.token.value", token(ROMEO)), tokens.given, "retried with the new token");
        Tokens stuck = new Tokens("expired.token.value", token(ROMEO), false);
        eq("invalid-token", raises(KeysrvException.Unauthorized.class,
            () -> await(client(ROMEO, url, stuck, null).currentKey(created.conversationId()))).problemType(), "re-authenticate");
        AccessTokenProvider failing = new AccessTokenProvider() {
            public CompletableFuture<String> token() {
                return CompletableFuture.failedFuture(new KeysrvException.TokenUnavailable("signed out"));
            }
            public CompletableFuture<Boolean> refresh() { return CompletableFuture.completedFuture(false); }
        };
        check(raises(KeysrvException.TokenUnavailable.class,
            () -> await(client(ROMEO, url, failing, null).currentKey(created.conversationId()))).detail().contains("signed out"), "token error");
    }

    static void appKeyCache() throws Exception {
        Proxy proxy = new Proxy();
        try {
            MapKeyCache cache = new MapKeyCache();
            KeysrvClient romeo = client(ROMEO);
            CreatedConversation created = await(romeo.createConversation(List.of(JULIET), History.SHARED, null));
            String oid = created.key().objectid();
            String element = created.key().seal(ROMEO, JULIET, text("kept in the keystore"));
            KeysrvClient juliet = client(JULIET, proxy.url, null, cache);
            eq("kept in the keystore", await(juliet.openMessage(chat(element), ctx(JULIET))).body(), "opened");
            eq(32, cache.keys.get(oid).key().length, "stored key");
            check(juliet.cachedKeyCount() == null, "no memory cache");
            proxy.seen.clear();
            KeysrvClient restarted = client(JULIET, proxy.url, null, cache);
            await(restarted.openMessage(chat(element), ctx(JULIET)));
            eq(List.of(), proxy.startingWith("GET /v1/keys"), "no key request after a restart");
            StoredKey s = cache.keys.get(oid);
            cache.keys.put(oid, new StoredKey(oid, s.conversationId(), s.key(), s.createdAt(), s.cachedAt().minusSeconds(3600)));
            proxy.seen.clear();
            await(restarted.openMessage(chat(element), ctx(JULIET)));
            eq(List.of("GET /v1/keys/" + oid), proxy.startingWith("GET /v1/keys"), "stale key fetched again");
            check(cache.calls.contains("remove " + oid), "stale key removed");
            restarted.clearCache();
            check(cache.keys.isEmpty() && cache.calls.contains("clear"), "cleared");
        } finally {
            proxy.server.stop(0);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) throw new IllegalArgumentException("usage: KeysrvJavaTest <keysrv binary>");
        bin = args[0];
        Process server = startServer();
        Map<String, Case> cases = new java.util.LinkedHashMap<>();
        cases.put("conversation_lifecycle", KeysrvJavaTest::conversationLifecycle);
        cases.put("members_and_roles", KeysrvJavaTest::membersAndRoles);
        cases.put("keys_current_rotate_get_batch", KeysrvJavaTest::keys);
        cases.put("seal_and_open_live_carbon_archive", KeysrvJavaTest::sealAndOpen);
        cases.put("open_message_cached", KeysrvJavaTest::openCached);
        cases.put("sealer_and_receiver", KeysrvJavaTest::sealerAndReceiver);
        cases.put("room_messages_and_bindings", KeysrvJavaTest::rooms);
        cases.put("open_messages_batches_per_100_keys", KeysrvJavaTest::openMessagesBatches);
        cases.put("files_upload_download_integrity", KeysrvJavaTest::files);
        cases.put("error_mapping", KeysrvJavaTest::errors);
        cases.put("token_refresh_on_401", KeysrvJavaTest::tokenRefresh);
        cases.put("app_provided_key_cache", KeysrvJavaTest::appKeyCache);
        int passed = 0, failed = 0;
        try {
            for (Map.Entry<String, Case> c : cases.entrySet()) {
                try {
                    c.getValue().run();
                    passed++;
                    System.out.println("PASS " + c.getKey());
                } catch (Throwable t) {
                    failed++;
                    System.out.println("FAIL " + c.getKey() + ": " + t);
                    t.printStackTrace(System.out);
                }
            }
        } finally {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
        }
        System.out.println("java: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 && passed == cases.size() ? 0 : 1);
    }
}
