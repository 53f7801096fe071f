/*
 * readl_n: read N 32-bit words, each from its own address.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the SoC's scratch address and called in ARM (A32) state as
 *     a leaf function: the ROM's lr is the return address, nothing is passed
 *     in registers.
 *   - Its parameters live in a block placed right after the last instruction
 *     (label `params`), found PC-relative, so the code runs at any address:
 *
 *         params + 0        u32 N            number of words
 *         params + 4 + 4*i  u32 slot[i]      in: address to read (4-aligned)
 *                                            out: the word read there
 *
 *     Results overwrite the addresses in place: the host FEL-READs
 *     params + 4 .. params + 4 + 4*N back.
 *   - Uses only r0-r3 (caller-saved), no stack, no memory but the parameter
 *     block and the addresses it names; returns with `bx lr`.
 *   - ARMv5TE instructions only, so it also runs on ARM926 cores (F1C100s).
 */
	.syntax unified
	.arch	armv5te
	.arm
	.text
	.global	readl_n
readl_n:
	adr	r0, params
	ldr	r1, [r0], #4		@ r1 = N, r0 -> slot[0]
next:
	subs	r1, r1, #1		@ one word fewer to go; negative: done
	bmi	done
	ldr	r2, [r0]		@ address from the slot
	ldr	r3, [r2]		@ one 32-bit load, as MMIO wants
	str	r3, [r0], #4		@ the value replaces the address
	b	next
done:
	bx	lr
params:
