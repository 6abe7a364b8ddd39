"""Tone measurements on 16-bit PCM shared by the audio tests: Goertzel
power at one frequency, and the share of a signal's energy at it."""

import array
import math


def samples(pcm):
    """Signed 16-bit native-endian PCM bytes -> array of samples."""
    a = array.array("h")
    a.frombytes(pcm[:len(pcm) // 2 * 2])
    return a


def goertzel_power(x, freq, rate):
    c = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in x:
        s0 = v + c * s1 - s2
        s2, s1 = s1, s0
    return s1 * s1 + s2 * s2 - c * s1 * s2


def tone_share(x, freq, rate):
    """Share of x's energy at freq, 0..1: Goertzel over 0.1 s blocks,
    summed, so that a phase jump (a loop point, a lost packet) does not
    cancel the tone out as one coherent window over it would."""
    block = rate // 10
    c = 2 * math.cos(2 * math.pi * freq / rate)
    tone = energy = 0.0
    for start in range(0, len(x) - block + 1, block):
        s1 = s2 = 0.0
        for v in x[start:start + block]:
            s0 = v + c * s1 - s2
            s2, s1 = s1, s0
            energy += v * v
        tone += 2 * (s1 * s1 + s2 * s2 - c * s1 * s2) / block
    return tone / energy if energy else 0.0
