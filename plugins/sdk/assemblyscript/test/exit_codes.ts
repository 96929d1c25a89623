// The exit-code table and the web-db row lengths every SDK shares, checked natively under
// Node (scripts/test.sh): returns how many entries disagree.
import { exitCode, rowLen } from "../index";

export function failures(): i32 {
  const codes: i32[] = [0, -1, -2, -3, -4, -5, 1, 7, 99, 100, -42];
  const want: i32[] = [0, 101, 102, 103, 104, 105, 1, 7, 99, 199, 199];
  let bad = 0;
  for (let i = 0; i < codes.length; i++) {
    if (exitCode(codes[i]) != want[i]) bad++;
  }
  // The web-db row lengths, pinned to the Rust SDK's (pattern::table tests).
  const rows: u64[] = [2997, 64109, 10017, 52126, 31900, 14273];
  for (let k = 0; k < rows.length; k++) {
    if (rowLen(<u64>k, 100, 65536, 3) != rows[k]) bad++;
  }
  if (rowLen(9, 4096, 4096, 1) != 4096) bad++;
  return bad;
}
