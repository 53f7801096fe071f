/*
 * memmove: copy SIZE bytes from SRC to DST inside the device's memory, as
 * sunxi-fel's `memmove` does (fel_memmove() in fel_lib.c): whole 32-bit words
 * where SRC and DST share their alignment, single bytes for the unaligned head
 * and tail (and for everything when they do not), so registers and FIFOs are
 * touched with word accesses where possible.
 *
 * Overlapping ranges are copied without damage: when DST lies inside
 * [SRC, SRC + SIZE) the copy runs downwards from the end, otherwise upwards
 * (sunxi-fel picks fel_memcpy_down/up on the host; this thunk decides itself).
 * Sizes are unsigned throughout (carry, not sign, ends the loops), so any
 * SIZE below 4 GiB works.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the SoC's scratch address and called in ARM (A32) state as
 *     a leaf function: the ROM's lr is the return address, nothing is passed
 *     in registers.
 *   - Its parameters live in a block placed right after the last instruction
 *     (label `params`), found PC-relative, so the code runs at any address:
 *
 *         params + 0   u32 dst    first byte written
 *         params + 4   u32 src    first byte read
 *         params + 8   u32 size   bytes to copy (0: nothing)
 *
 *     Nothing is returned; the block is left unchanged.
 *   - Uses only r0-r3 and r12 (caller-saved), no stack, writes nothing but
 *     [dst, dst + size); returns with `bx lr`.
 *   - ARMv5TE instructions only, so it also runs on ARM926 cores (F1C100s).
 */
	.syntax unified
	.arch	armv5te
	.arm
	.text
	.global	memmove
memmove:
	adr	r12, params
	ldmia	r12, {r0, r1, r2}	@ r0 = dst, r1 = src, r2 = size
	cmp	r0, r1
	bxeq	lr			@ same place: nothing to do
	bls	up			@ dst below src: upwards never overwrites unread bytes
	sub	r3, r0, r1
	cmp	r3, r2
	bcc	down			@ src < dst < src + size: overlap, copy downwards
up:
	eor	r3, r0, r1
	tst	r3, #3
	bne	up_bytes		@ different alignment: bytes only
up_head:
	tst	r1, #3
	beq	up_words
	subs	r2, r2, #1
	bxcc	lr			@ size ran out before alignment
	ldrb	r3, [r1], #1
	strb	r3, [r0], #1
	b	up_head
up_words:
	subs	r2, r2, #4
	ldrcs	r3, [r1], #4
	strcs	r3, [r0], #4
	bcs	up_words
	add	r2, r2, #4		@ 0-3 bytes left
up_bytes:
	subs	r2, r2, #1
	bxcc	lr
	ldrb	r3, [r1], #1
	strb	r3, [r0], #1
	b	up_bytes
down:
	add	r0, r0, r2		@ one past the last byte of each range
	add	r1, r1, r2
	eor	r3, r0, r1
	tst	r3, #3
	bne	down_bytes
down_head:
	tst	r1, #3
	beq	down_words
	subs	r2, r2, #1
	bxcc	lr
	ldrb	r3, [r1, #-1]!
	strb	r3, [r0, #-1]!
	b	down_head
down_words:
	subs	r2, r2, #4
	ldrcs	r3, [r1, #-4]!
	strcs	r3, [r0, #-4]!
	bcs	down_words
	add	r2, r2, #4
down_bytes:
	subs	r2, r2, #1
	bxcc	lr
	ldrb	r3, [r1, #-1]!
	strb	r3, [r0, #-1]!
	b	down_bytes
params:				@ the builder appends the block here
