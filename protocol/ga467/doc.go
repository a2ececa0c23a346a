// Package ga467 encodes and decodes the framed serial protocol of GA 467 resident ID card
// readers, and the ID card record they return (CARDS.md, "Resident ID card reader (GA 467
// serial protocol)").
//
// A frame is AA AA AA 96 69 | LEN (2, big-endian) | body | CHK. LEN counts the body and
// CHK; CHK is the XOR of every byte from LEN up to the one before it. A host command's body
// is CMD PARA DATA, a reader answer's body is SW1 SW2 SW3 DATA. The ID card record in a
// successful read answer is two big-endian lengths (text, photo), 256 bytes of UCS-2
// little-endian text in fixed fields, and the photo in the vendor's WLT format, which
// this package keeps as opaque bytes.
//
// Guarantees:
//   - Pure: byte slices in, values out. No I/O, no clock, no goroutines, no globals that
//     change.
//   - Bounded: LEN is accepted only in MinLen..MaxLen (the longest is the read answer,
//     1,295 bytes on the wire), so a Decoder holds at most two frames of input and a frame
//     claiming more is skipped at once instead of being waited for.
//   - Resynchronising: a Decoder skips bytes before a preamble, a frame whose LEN is out of
//     bounds, and a frame whose CHK is wrong, and then looks for the next preamble from the
//     byte after the bad one's start, so a good frame hidden behind a false preamble (junk
//     that happens to contain one) is still found. Every skipped byte is reported once, with
//     a stable reason code. Which frames come out does not depend on how the input was cut
//     into pieces.
//   - Strict record decoding: fixed field widths, the card-type mark checked (foreign
//     permanent resident and Hong Kong/Macao/Taiwan residence cards, which readers return
//     in other layouts, are refused as unsupported rather than misread), dates and the ID
//     number checked for their form. Errors say which field, never its content: card
//     data is personal.
package ga467
