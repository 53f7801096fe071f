/*
 * writel_n: write N 32-bit words, in order, each to its own address.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the SoC's scratch address and called in ARM (A32) state as
 *     a leaf function: the ROM's lr is the return address, nothing is passed
 *     in registers.
 *   - Its parameters live in a block placed right after the last instruction
 *     (label `params`), found PC-relative, so the code runs at any address:
 *
 *         params + 0        u32 N            number of pairs
 *         params + 4 + 8*i  u32 address[i]   where to store (4-aligned)
 *         params + 8 + 8*i  u32 value[i]     what to store there
 *
 *     Pairs are written first to last, each as one 32-bit store. Nothing is
 *     returned; the block is left unchanged.
 *   - Uses only r0-r3 (caller-saved), no stack, writes nothing but the
 *     addresses it names; returns with `bx lr`.
 *   - ARMv5TE instructions only, so it also runs on ARM926 cores (F1C100s).
 */
	.syntax unified
	.arch	armv5te
	.arm
	.text
	.global	writel_n
writel_n:
	adr	r0, params
	ldr	r1, [r0], #4		@ r1 = N, r0 -> pair[0]
next:
	subs	r1, r1, #1		@ one pair fewer to go; negative: done
	bmi	done
	ldmia	r0!, {r2, r3}		@ r2 = address, r3 = value
	str	r3, [r2]
	b	next
done:
	bx	lr
params:
