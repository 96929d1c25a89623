// The exit-code table every SDK shares, checked natively under Node (scripts/test.sh):
// returns how many entries disagree.
import { exitCode } from "../index";

export function failures(): i32 {
  const codes: i32[] = [0, -1, -2, -3, -4, -5, 1, 7, 99, 100, -42];
  const want: i32[] = [0, 101, 102, 103, 104, 105, 1, 7, 99, 199, 199];
  let bad = 0;
  for (let i = 0; i < codes.length; i++) {
    if (exitCode(codes[i]) != want[i]) bad++;
  }
  return bad;
}
