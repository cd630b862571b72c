package dev.kiln.samples;

import static java.nio.charset.StandardCharsets.UTF_8;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import org.apache.commons.lang3.StringUtils;

/** A web app on the JDK's built-in HTTP server: answers GET / on $PORT. */
public final class App {
    private App() {}

    /** The line served at "/". */
    static String greeting(String name, String javaVersion) {
        return "Hello from Java " + javaVersion + ", " + StringUtils.defaultIfBlank(name, "kiln") + "!\n";
    }

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(StringUtils.defaultIfBlank(System.getenv("PORT"), "8080"));
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 0);
        server.createContext("/", App::handle);
        server.start();
        System.out.println("listening on port " + port);
    }

    private static void handle(HttpExchange exchange) throws IOException {
        boolean root = "/".equals(exchange.getRequestURI().getPath());
        boolean get = "GET".equals(exchange.getRequestMethod());
        String body = root && get ? greeting(System.getenv("GREETING_NAME"), System.getProperty("java.version")) : "not found\n";
        byte[] bytes = body.getBytes(UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        exchange.sendResponseHeaders(root && get ? 200 : 404, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }
}
