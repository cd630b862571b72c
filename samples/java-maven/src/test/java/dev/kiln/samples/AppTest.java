package dev.kiln.samples;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class AppTest {
    @Test
    public void greetingNamesJavaAndItsVersion() {
        assertEquals("Hello from Java 17.0.2, kiln!\n", App.greeting(" ", "17.0.2"));
        assertEquals("Hello from Java 21, you!\n", App.greeting("you", "21"));
    }
}
