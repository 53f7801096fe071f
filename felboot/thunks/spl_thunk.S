/*
 * spl_thunk: run an eGON SPL from FEL and come back to the boot ROM.
 *
 * The SPL wants SRAM the ROM lives on (its IRQ stack, its stack, its state).
 * The host has uploaded those parts of the SPL to spare SRAM instead; this
 * thunk exchanges every (rom, spare) pair, so that the SPL stands complete at
 * spl_addr and the ROM's bytes are parked, calls the SPL, and exchanges the
 * pairs again before returning, which puts the ROM's bytes back.
 *
 * Steps:
 *   1. Save the ROM's sp, cpsr, r4-r11 and lr on a private stack whose top
 *      (stack_top) the host chose inside the thunk area, and mask IRQ and FIQ:
 *      the ROM's IRQ stack is about to be swapped out.
 *   2. Refuse to go on when SCTLR still has the MMU, the D-cache or the
 *      I-cache on: mark "eGON.MMU", touch nothing else, return.
 *   3. Swap every pair.
 *   4. Verify the eGON checksum in place: the u32 sum of spl_length bytes at
 *      spl_addr, counting the checksum word (+0x0C) as 0x5F0A6C39, must equal
 *      the checksum word. Mismatch: mark "eGON.BAD", swap back, return
 *      without calling the SPL.
 *   5. Mark "eGON.FEL" (a sunxi SPL then knows to return to FEL), make the
 *      freshly moved code visible (DSB, I-cache invalidate, ISB), blx spl_addr.
 *   6. The SPL returns with only pc trustworthy: rebuild sp from stack_top,
 *      swap back, restore cpsr, registers and the ROM's sp, bx lr.
 *
 * The marker replaces the word at spl_addr+8 (".BT0" -> ".FEL", ".BAD" or
 * ".MMU"); the host FEL-READs the 8 bytes at spl_addr+4 afterwards. "eGON.BT0" still
 * there means the thunk never got that far.
 *
 * Calling convention (EXEC from the FEL boot ROM):
 *   - Uploaded to the SoC's thunk address (NOT the scratch address: the SPL
 *     may overwrite that) and called in ARM state as a function.
 *   - Parameter block right after the code (label `params`), PC-relative:
 *
 *         params + 0          u32 stack_top    private stack top, 8-aligned, inside
 *                                              the thunk area, above the block
 *         params + 4          u32 spl_addr     where the SPL runs
 *         params + 8          u32 spl_length   bytes to checksum; multiple of 4, > 0
 *         params + 12         u32 count        number of swap pairs
 *         params + 16 + 12*i  u32 rom[i], u32 spare[i], u32 size[i]  (size: multiple of 4)
 *
 *   - The private stack holds an 11-word frame; the SPL is entered with sp
 *     just below it.
 *   - ARMv5TE instructions only; the barriers use their CP15 forms, and the
 *     ISB and branch-predictor invalidate are issued only on cores with the
 *     CPUID scheme (ARMv7 and later), where the CP15 form needs SCTLR.CP15BEN,
 *     which every sunxi boot ROM leaves set.
 */
	.syntax unified
	.arch	armv5te
	.arm
	.text
	.global	spl_thunk

	.equ	SCTLR_M, 1 << 0
	.equ	SCTLR_C, 1 << 2
	.equ	SCTLR_I, 1 << 12
	.equ	PSR_MASK_IRQ_FIQ, 0xC0
	.equ	FRAME, 11 * 4		@ ROM sp + r4-r11 + cpsr + lr
	.equ	MAGIC_TAIL, 8		@ offset of ".BT0" in the eGON header
	.equ	CHECKSUM, 12		@ offset of the checksum word
	.equ	MIDR_ARCH, 0xF << 16
	.equ	ARCH_CPUID, 0xF << 16

spl_thunk:
	ldr	r12, stack_top
	str	sp, [r12, #-4]!		@ 1. the ROM's sp is the frame's top word
	mov	sp, r12
	mrs	r12, cpsr
	push	{r4-r11, r12, lr}
	orr	r12, r12, #PSR_MASK_IRQ_FIQ
	msr	cpsr_c, r12

	mrc	p15, 0, r0, c1, c0, 0	@ 2. SCTLR
	ldr	r1, caches_mask
	tst	r0, r1
	ldrne	r0, mmu_tag
	bne	mark_only

	bl	swap_pairs		@ 3.

	ldr	r4, spl_addr		@ 4. checksum
	ldr	r5, spl_length
	ldr	r6, checksum_stamp
	mov	r7, r4
sum_word:
	ldr	r8, [r7], #4
	add	r6, r6, r8
	subs	r5, r5, #4
	bne	sum_word
	ldr	r8, [r4, #CHECKSUM]
	sub	r6, r6, r8		@ the stored word was summed: take it out again
	cmp	r6, r8
	ldrne	r0, bad_tag
	strne	r0, [r4, #MAGIC_TAIL]
	bne	swap_back

	ldr	r0, fel_tag		@ 5.
	str	r0, [r4, #MAGIC_TAIL]
	mov	r0, #0
	mcr	p15, 0, r0, c7, c10, 4	@ DSB: the swapped words have landed
	mcr	p15, 0, r0, c7, c5, 0	@ invalidate the whole I-cache
	mrc	p15, 0, r1, c0, c0, 0	@ MIDR
	and	r1, r1, #MIDR_ARCH
	cmp	r1, #ARCH_CPUID
	mcreq	p15, 0, r0, c7, c5, 6	@ invalidate the branch predictor
	mcreq	p15, 0, r0, c7, c10, 4	@ DSB
	mcreq	p15, 0, r0, c7, c5, 4	@ ISB (ARMv5 just needs the branch below)
	blx	r4

	ldr	r0, stack_top		@ 6. whatever sp the SPL left
	sub	sp, r0, #FRAME
swap_back:
	bl	swap_pairs
	b	leave

mark_only:
	ldr	r4, spl_addr
	str	r0, [r4, #MAGIC_TAIL]
leave:
	pop	{r4-r11, r12, lr}
	msr	cpsr_c, r12
	ldr	sp, [sp]
	bx	lr

@ Exchange the words of every (rom, spare, size) pair. Uses r4-r10.
swap_pairs:
	adr	r4, pairs
	ldr	r5, count
next_pair:
	subs	r5, r5, #1
	bxmi	lr
	ldmia	r4!, {r6, r7, r8}	@ rom, spare, size
next_word:
	subs	r8, r8, #4
	bmi	next_pair
	ldr	r9, [r6]
	ldr	r10, [r7]
	str	r9, [r7], #4
	str	r10, [r6], #4
	b	next_word

caches_mask:
	.word	SCTLR_M | SCTLR_C | SCTLR_I
checksum_stamp:
	.word	0x5F0A6C39
fel_tag:
	.ascii	".FEL"
bad_tag:
	.ascii	".BAD"
mmu_tag:
	.ascii	".MMU"
params:				@ the builder appends the block here
	.equ	stack_top, params + 0
	.equ	spl_addr, params + 4
	.equ	spl_length, params + 8
	.equ	count, params + 12
	.equ	pairs, params + 16
