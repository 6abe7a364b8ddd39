/* talk.h — the talk process ("rtspd --talk"): plays one talker's
 * back-channel audio on an ALSA device.
 *
 * Why a process of its own: the device is shared by every stream's
 * worker, one talker at a time, and a decoder fed by a stranger's packets
 * must not be able to take down a video stream. The master owns the
 * arbitration (one talk process per device at a time, see
 * master/talk.c); the worker that holds the talker's session sends its
 * RTP through a SOCK_SEQPACKET socketpair (one packet per message, with
 * its arrival time), never blocking on it; this process reorders them
 * (talk/jitter.h), decodes (talk/decode.h), resamples to the device's
 * format and writes to ALSA, and optionally to a WAV file.
 *
 * Lifetime: started for one talker, it opens the device and says
 * IPC_TALK_READY (or IPC_TALK_ERROR and exits); it ends when the packet
 * socket closes (TEARDOWN, timeout, disconnect or a crash of the worker)
 * or the master tells it to, and its exit frees the device.
 *
 * Ownership: it owns the ALSA handle, the decoder, the resampler, the WAV
 * file and its end of the packet socket.
 */
#ifndef RTSPD_TALK_H
#define RTSPD_TALK_H

#define TALK_JITTER_DELAY_US 40000   /* play-out delay after the earliest arrival */
#define TALK_OUTPUT_RATE 48000       /* what we ask of the device (plug converts) */

/* The process's main loop, IPC socket on ipc_fd. Returns the exit code. */
int talk_main(int ipc_fd);

#endif
