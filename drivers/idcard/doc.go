// Package idcard is the driver for GA 467 resident ID card readers on a serial port
// (RS-232, or USB-CDC), on go.bug.st/serial and protocol/ga467 (CARDS.md, "Resident ID
// card reader (GA 467 serial protocol)").
//
// A Device owns one port and its reconnect loop, and nothing else: it polls the reader
// for a card, reads the card once, and hands the read to a device.Sink as a device.Read
// of Kind "card" whose CardRead has Kind "resident_id_card" (or "unknown" for a card the
// reader can read but that is not a resident ID card), the port path as Reader, and
// either the identity or a stable reason. It knows nothing of card applications.
//
// Guarantees:
//   - One read per card placed: find → select → read when a card appears, then the card
//     is only watched (find) until it has been seen gone twice in a row, one poll apart,
//     so a card left on the reader is not read again, and a card held at the edge of the
//     field, flickering in and out, is not read once per flicker. A failed read (the card
//     answered 41, the answer was garbled beyond retries, the record is malformed) is
//     reported once, with its reason, and the card must be lifted and placed again, as
//     CARDS.md says. A status CARDS.md does not name is reason reader_error, with the
//     reader's SW3 in CardRead.ReaderStatus ("33"). Readers that stop reporting a card after reading it (find answers
//     80 until it is lifted) behave the same way: to the driver the card is gone, and the
//     next card found is a new one.
//   - Polls are at least Poll apart (never under 300 ms) and wait on a timer; answers are
//     waited for by blocking reads with a deadline: nothing runs while idle.
//   - Answers are decoded by ga467.Decoder: split answers, junk, a wrong CHK and a LEN
//     beyond the frame are survived, and every byte dropped is reported as a
//     device.Drop with the decoder's reason. An answer is waited for until its timeout
//     (0.5 s for find and select, 3 s for the read, plus the time its bytes take at the
//     baud rate), however it pauses; once a garbled frame has come, only until the line
//     is quiet for 250 ms. A garbled answer or none at all is retried (the read up to 3
//     times in all); a reader that says it got a garbled command (SW3 10) gets it again.
//     Before each command the port's input is flushed, so a late answer to an earlier
//     command is never taken for the answer to this one.
//   - The port is found by path, or by USB VID/PID (and serial number) through the port
//     list, before every open, and reconnects back off from 100 ms to 5 s like the serial
//     scanners (drivers/serial). The device is "connected" only once the reader has
//     answered; a port that opens but where nothing answers three polls in a row is
//     closed and reopened, with reason "no_answer" (a wrong baud rate looks like this).
//     A reconnect forgets the card: one still on the reader is read again.
//   - Personal data never reaches a log line: logs carry reason codes and counts only.
//     The sink is called only from Run's goroutine; cancelling Run's context closes the
//     port, which ends a blocked read at once, and Run reports "stopped" and returns nil.
//
// The virtual reader in drivers/idcard/vreader speaks the reader's side over a real
// kernel pty, for the tests, the demo and `ehc-agent sim idcard`.
package idcard
