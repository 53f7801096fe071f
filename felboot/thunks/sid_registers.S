/*
 * sid_registers: read e-fuse words through the SID controller's registers.
 *
 * Some SoCs (H3: SocInfo.sid_needs_registers) may return stale words when the
 * SID's memory-mapped copy at sid_base + sid_offset is read directly, so each
 * word is fetched through SID_PRCTL / SID_RDKEY instead. Per word:
 *
 *   1. SID_PRCTL = offset << 16                        select the e-fuse word
 *   2. SID_PRCTL = offset << 16 | 0xAC << 8 | 1 << 1   operation lock + READ start
 *   3. spin while SID_PRCTL bit 1 (READ start) is set, at most `spin_limit`
 *      polls, so a dead SID block cannot hang the ROM forever
 *   4. SID_PRCTL = 0                                   clear offset, lock and op bits
 *   5. word = SID_RDKEY
 *
 * The registers are written whole (no read-modify-write): PRCTL's other bits
 * only matter for programming fuses, which this never does.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the SoC's scratch address and called in ARM (A32) state as
 *     a leaf function: the ROM's lr is the return address, nothing is passed
 *     in registers.
 *   - Its parameters live in a block placed right after the last instruction
 *     (label `params`), found PC-relative, so the code runs at any address:
 *
 *         params + 0         u32 sid_base     SID controller; PRCTL at +0x40, RDKEY at +0x60
 *         params + 4         u32 spin_limit   polls of PRCTL per word before giving up (>= 1)
 *         params + 8         u32 left         in: N, the number of words
 *                                             out: words NOT read; 0 = all read,
 *                                             k > 0 = word N-k timed out (it and the
 *                                             later slots keep their offsets)
 *         params + 12 + 4*i  u32 slot[i]      in: e-fuse byte offset of word i
 *                                             out: the word read (SID_RDKEY)
 *
 *     The host FEL-READs params + 8 .. params + 12 + 4*N back. PRCTL is
 *     left cleared also after a time-out.
 *   - Uses only r0-r3 and r12 (caller-saved), no stack, no memory but the
 *     parameter block and the two SID registers; returns with `bx lr`.
 *   - ARMv5TE instructions only (no dsb/movw): runs on every sunxi core.
 */
	.syntax unified
	.arch	armv5te
	.arm
	.text
	.global	sid_registers

	.equ	SID_PRCTL, 0x40
	.equ	SID_RDKEY, 0x60
	.equ	SID_OP_LOCK, 0xAC << 8
	.equ	SID_READ_START, 1 << 1

sid_registers:
	adr	r1, params
	ldr	r0, [r1]		@ r0 = sid_base
	ldr	r2, [r1, #8]		@ r2 = words left
	add	r1, r1, #12		@ r1 -> slot[0]
next_word:
	cmp	r2, #0
	beq	finish
	ldr	r3, [r1]		@ e-fuse byte offset
	lsl	r3, r3, #16
	str	r3, [r0, #SID_PRCTL]	@ 1. select the word
	orr	r3, r3, #SID_OP_LOCK
	orr	r3, r3, #SID_READ_START
	str	r3, [r0, #SID_PRCTL]	@ 2. lock + start the read
	ldr	r12, spin_limit
poll:
	ldr	r3, [r0, #SID_PRCTL]
	tst	r3, #SID_READ_START	@ 3. cleared by the hardware when done
	beq	fetch
	subs	r12, r12, #1
	bne	poll
	b	give_up			@ still busy after spin_limit polls
fetch:
	mov	r3, #0
	str	r3, [r0, #SID_PRCTL]	@ 4. clear offset, lock and op bits
	ldr	r3, [r0, #SID_RDKEY]	@ 5. the word
	str	r3, [r1], #4
	sub	r2, r2, #1
	b	next_word
give_up:
	mov	r3, #0
	str	r3, [r0, #SID_PRCTL]	@ do not leave a read pending with the lock set
finish:
	adr	r3, left
	str	r2, [r3]		@ report the words not read
	bx	lr
params:				@ the builder appends the block here
	.equ	spin_limit, params + 4
	.equ	left, params + 8
