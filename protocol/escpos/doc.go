// Package escpos writes and reads the ESC/POS byte stream of a receipt printer
// (PRINTERS.md): a Builder for receipts (initialise, GBK text in Chinese character
// mode, alignment, emphasis, the QR code stored and printed with `GS ( k`, feed and
// cut), a parser of what a printer receives (Next, one command at a time, for a stream;
// Parse, a whole job, for tests), the paper status request and its reply (`DLE EOT 4`;
// also `GS r 1`), and a renderer that draws a parsed job as the printer would print it.
//
// It is pure: no I/O, no globals that change. The parser is bounded (at most MaxJob
// bytes per Parse, at most 7,089 bytes of QR data per symbol, every command's length
// known before it is read) and fuzzed; it knows the commands a receipt needs and a few
// common ones, and calls anything else a SyntaxError, because the length of an unknown
// ESC/POS command cannot be known and guessing would misread everything after it.
//
// Real-time commands (`DLE EOT n`) are recognised anywhere a command may start. A real
// printer recognises them even inside another command's data, so the Builder never
// writes the bytes 10 04 into data: text is printable GBK or ASCII only, and a QR
// payload holding them is refused.
package escpos
