// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Base} from "./Base.t.sol";
import {Merkle} from "./utils/Merkle.sol";
import {QEVSettlement} from "../src/QEVSettlement.sol";
import {IStakedUSDaiQueue} from "../src/interfaces/IStakedUSDaiQueue.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

contract QEVSettlementTest is Base {
    address internal alice = address(0xA1);
    address internal bob = address(0xB0B);
    address internal carol = address(0xCA401);

    uint256 internal idA;
    uint256 internal idB;
    uint256 internal idC;

    event AuctionKeyCommitted(uint64 indexed auctionId, bytes32 publicKey, bytes32 commitment);
    event NonceIncremented(uint64 indexed auctionId, uint256 indexed redemptionId, uint256 nonce);
    event AuctionSettled(
        uint64 indexed auctionId,
        bytes32 allocationRoot,
        bytes32 bidBookRoot,
        uint256 totalShares,
        uint256 totalBurnt,
        uint256 totalPayout,
        uint256 feeShares
    );
    event AllocationClaimed(
        uint64 indexed auctionId,
        uint256 indexed redemptionId,
        address indexed controller,
        uint256 sharesFilled,
        uint256 sharesBurnt,
        uint256 payout
    );
    event AuctionKeyRevealed(uint64 indexed auctionId, bytes32 privateKey);
    event ReceiptSignerSet(address indexed previous, address indexed signer);

    function setUp() public override {
        super.setUp();
        _deposit(alice, 1000e18);
        _deposit(bob, 1000e18);
        _deposit(carol, 1000e18);
        vm.warp(GENESIS + 1 days);
        idA = _request(alice, 100e18);
        idB = _request(bob, 200e18);
        idC = _request(carol, 50e18);
        _commit(T1);
    }

    function _allocs() internal view returns (QEVSettlement.Allocation[] memory a) {
        uint256 price = vault.redemptionSharePrice();
        a = new QEVSettlement.Allocation[](2);
        a[0] = _alloc(idA, alice, 100e18, 500, price);
        a[1] = _alloc(idB, bob, 150e18, 200, price);
    }

    /* ---------------------------------------------------------------- key */

    function test_commitAuctionKey() public {
        vm.expectEmit();
        emit AuctionKeyCommitted(T2, PK, keccak256(abi.encodePacked(SK)));
        vm.prank(keeper);
        settlement.commitAuctionKey(T2, PK, keccak256(abi.encodePacked(SK)));
        (bytes32 pk, bytes32 c,, bool revealed) = settlement.auctionKey(T2);
        assertEq(pk, PK);
        assertEq(c, settlement.keyCommitment(SK));
        assertFalse(revealed);
    }

    function test_commitAuctionKey_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.KeyAlreadyCommitted.selector, T1));
        vm.prank(keeper);
        settlement.commitAuctionKey(T1, PK, bytes32(uint256(1)));

        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, settlement.KEEPER_ROLE()));
        vm.prank(alice);
        settlement.commitAuctionKey(T2, PK, bytes32(uint256(1)));

        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidAuctionId.selector, T2 + 1));
        vm.prank(keeper);
        settlement.commitAuctionKey(T2 + 1, PK, bytes32(uint256(1)));

        vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        vm.prank(keeper);
        settlement.commitAuctionKey(T2, PK, bytes32(0));

        vm.warp(T2);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionClosed.selector, T2));
        vm.prank(keeper);
        settlement.commitAuctionKey(T2, PK, bytes32(uint256(1)));
    }

    /* -------------------------------------------------------------- nonce */

    function test_incrementNonce() public {
        assertEq(settlement.nonce(T1, idA), 0);
        vm.expectEmit();
        emit NonceIncremented(T1, idA, 1);
        vm.prank(alice);
        assertEq(settlement.incrementNonce(T1, idA), 1);
        assertEq(settlement.nonce(T1, idA), 1);
        assertEq(settlement.nonce(T2, idA), 0);
    }

    function test_incrementNonce_notController_reverts() public {
        vm.expectRevert(QEVSettlement.InvalidCaller.selector);
        vm.prank(bob);
        settlement.incrementNonce(T1, idA);
    }

    function test_incrementNonce_afterClose_reverts() public {
        vm.warp(T1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionClosed.selector, T1));
        vm.prank(alice);
        settlement.incrementNonce(T1, idA);
    }

    /* ------------------------------------------------------------- settle */

    function test_settle_early_reverts() public {
        vm.warp(T1 - 1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _tree(T1, a);
        (uint256 s, uint256 b, uint256 p) = _totals(a);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionNotClosed.selector, T1));
        vm.prank(keeper);
        settlement.settleAuction(T1, tree[0], bytes32(0), s, b, p);
    }

    function test_settle_double_reverts() public {
        vm.warp(T1);
        _settle(T1, _allocs());
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionAlreadySettled.selector, T1));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(uint256(1)), keccak256("book"), 0, 0, 0);
    }

    function test_settle_reverts_misuse() public {
        vm.warp(T2);
        // not keeper
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, settlement.KEEPER_ROLE()));
        vm.prank(alice);
        settlement.settleAuction(T1, bytes32(0), bytes32(0), 0, 0, 0);
        // not a window boundary
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidAuctionId.selector, T1 + 5));
        vm.prank(keeper);
        settlement.settleAuction(T1 + 5, bytes32(0), bytes32(0), 0, 0, 0);
        // key not committed
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.KeyNotCommitted.selector, T2));
        vm.prank(keeper);
        settlement.settleAuction(T2, bytes32(0), bytes32(0), 0, 0, 0);
        // book not committed, then another root than the committed one
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.BookNotCommitted.selector, T1));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), bytes32(0), 0, 0, 0);
        _commitBook(T1, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.BookRootMismatch.selector, bytes32(0), keccak256("x")));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("x"), 0, 0, 0);
        // burnt > shares
        vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), bytes32(0), 1e18, 2e18, 0);
        // payout above the value of the unburnt shares
        uint256 maxPayout = 90e18 * vault.redemptionSharePrice() / 1e18;
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.PayoutExceedsValue.selector, maxPayout + 1, maxPayout));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), bytes32(0), 100e18, 10e18, maxPayout + 1);
        // more shares than pending
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), bytes32(0), 351e18, 351e18, 0);
    }

    function test_settle_insufficientLiquidity_reverts() public {
        vm.warp(T1);
        // drain free liquidity: service bob+carol... instead set aside via serviceRedemptions of everything else
        vm.warp(T1 + 1);
        vm.prank(keeper);
        vault.serviceRedemptions(350e18); // sets aside 350 USDai, 2650 free
        // a fat NAV bump on paper (external assets) makes the price high without liquidity
        vm.prank(admin);
        vault.setExternalAssets(100_000e18);
        uint256 price = vault.redemptionSharePrice();
        vm.prank(alice);
        uint256 id = vault.requestRedeem(900e18, alice, alice);
        vm.warp(T2 + 1);
        vm.prank(keeper);
        settlement.commitAuctionKey(T2 + WINDOW, PK, keccak256(abi.encodePacked(SK)));
        // use the T2 auction: commit it retroactively is impossible, so settle T2+W after it closes
        vm.warp(T2 + WINDOW);
        QEVSettlement.Allocation[] memory a = new QEVSettlement.Allocation[](1);
        a[0] = _alloc(id, alice, 900e18, 10, vault.redemptionSharePrice());
        assertGt(a[0].payout, 2650e18);
        price;
        bytes32[] memory tree = _tree(T2 + WINDOW, a);
        _commitBook(T2 + WINDOW, bytes32(0));
        vm.expectRevert(IStakedUSDaiQueue.InsufficientBalance.selector);
        vm.prank(keeper);
        settlement.settleAuction(T2 + WINDOW, tree[0], bytes32(0), a[0].sharesFilled, a[0].sharesBurnt, a[0].payout);
    }

    function test_settle_locksSharesAndEscrowsPayout() public {
        vm.prank(admin);
        settlement.setAdminFee(100, feeRecipient);
        vm.warp(T1);
        uint256 priceBefore = vault.redemptionSharePrice();
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _tree(T1, a);
        (uint256 s, uint256 b, uint256 p) = _totals(a);
        (uint256 vaultUsdaiBefore,) = vault.balances();
        _commitBook(T1, keccak256("book"));

        vm.expectEmit();
        emit AuctionSettled(T1, tree[0], keccak256("book"), s, b, p, b / 100);
        vm.prank(keeper);
        settlement.settleAuction(T1, tree[0], keccak256("book"), s, b, p);

        (uint256 vaultUsdaiAfter,) = vault.balances();
        assertEq(vaultUsdaiBefore - vaultUsdaiAfter, p);
        assertEq(usdai.balanceOf(address(settlement)), p);
        assertEq(vault.qevLockedShares(), s);
        assertEq(vault.balanceOf(feeRecipient), b / 100);
        // the burnt shares accrue to the holders who stay
        assertGt(vault.redemptionSharePrice(), priceBefore);
        assertTrue(settlement.isSettled(T1));
        (bytes32 root, bytes32 book, uint256 ts, uint256 tb, uint256 tp,,,,) = settlement.auction(T1);
        assertEq(root, tree[0]);
        assertEq(book, keccak256("book"));
        assertEq(ts, s);
        assertEq(tb, b);
        assertEq(tp, p);
    }

    /* -------------------------------------------------------------- claim */

    function test_claim() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _settle(T1, a);
        (,,, uint256 pendingBefore,) = vault.redemptionQueueInfo();

        vm.expectEmit();
        emit AllocationClaimed(T1, idB, bob, a[1].sharesFilled, a[1].sharesBurnt, a[1].payout);
        vm.prank(carol); // anyone can claim; funds go to the controller
        _claim(T1, tree, a[1]);

        assertEq(usdai.balanceOf(bob), a[1].payout);
        assertEq(_pending(idB), 50e18);
        (,,, uint256 pendingAfter,) = vault.redemptionQueueInfo();
        assertEq(pendingBefore - pendingAfter, 150e18);
        assertEq(vault.qevLockedShares(), 100e18);
        assertTrue(settlement.isClaimed(T1, idB));
        assertFalse(settlement.isClaimed(T1, idA));

        _claim(T1, tree, a[0]);
        assertEq(usdai.balanceOf(alice), a[0].payout);
        assertEq(_pending(idA), 0);
        assertEq(vault.qevLockedShares(), 0);
        assertEq(usdai.balanceOf(address(settlement)), 0);
        (,,,,, uint256 cs, uint256 cp,,) = settlement.auction(T1);
        assertEq(cs, 250e18);
        assertEq(cp, a[0].payout + a[1].payout);
    }

    function test_claim_double_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _settle(T1, a);
        _claim(T1, tree, a[0]);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AlreadyClaimed.selector, T1, idA));
        _claim(T1, tree, a[0]);
    }

    function test_claim_wrongProof_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _settle(T1, a);
        bytes32[] memory proofB = _proof(T1, tree, a[1]);
        // proof of another leaf
        vm.expectRevert(QEVSettlement.InvalidProof.selector);
        settlement.claim(T1, idA, alice, a[0].sharesFilled, a[0].sharesBurnt, a[0].payout, proofB);
        // tampered payout
        bytes32[] memory proofA = _proof(T1, tree, a[0]);
        vm.expectRevert(QEVSettlement.InvalidProof.selector);
        settlement.claim(T1, idA, alice, a[0].sharesFilled, a[0].sharesBurnt, a[0].payout + 1, proofA);
        // other controller
        vm.expectRevert(QEVSettlement.InvalidProof.selector);
        settlement.claim(T1, idA, bob, a[0].sharesFilled, a[0].sharesBurnt, a[0].payout, proofA);
        // other auction
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionNotSettled.selector, T2));
        settlement.claim(T2, idA, alice, a[0].sharesFilled, a[0].sharesBurnt, a[0].payout, proofA);
    }

    function test_claim_beforeSettle_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _tree(T1, a);
        bytes32[] memory proofA = _proof(T1, tree, a[0]);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionNotSettled.selector, T1));
        settlement.claim(T1, idA, alice, a[0].sharesFilled, a[0].sharesBurnt, a[0].payout, proofA);
    }

    function test_claim_beyondReservedPayout_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _tree(T1, a);
        (uint256 s, uint256 b, uint256 p) = _totals(a);
        // keeper settles with less payout than the leaves add up to
        _commitBook(T1, bytes32(0));
        vm.prank(keeper);
        settlement.settleAuction(T1, tree[0], bytes32(0), s, b, p - 1);
        _claim(T1, tree, a[0]);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.ClaimExceedsSettlement.selector, T1));
        _claim(T1, tree, a[1]);
    }

    function test_claim_beyondSettledShares_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory tree = _tree(T1, a);
        (uint256 s, uint256 b, uint256 p) = _totals(a);
        _commitBook(T1, bytes32(0));
        vm.prank(keeper);
        settlement.settleAuction(T1, tree[0], bytes32(0), s - 1, b - 1, p);
        _claim(T1, tree, a[0]);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.ClaimExceedsSettlement.selector, T1));
        _claim(T1, tree, a[1]);
    }

    function test_claim_controllerMismatch_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        a[1].controller = carol; // leaf names the wrong controller for bob's request
        bytes32[] memory tree = _settle(T1, a);
        vm.expectRevert(abi.encodeWithSelector(IStakedUSDaiQueue.ControllerMismatch.selector, idB));
        _claim(T1, tree, a[1]);
    }

    function test_claim_burntAboveFilled_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = new QEVSettlement.Allocation[](2);
        a[0] = QEVSettlement.Allocation(idA, alice, 10e18, 11e18, 0);
        a[1] = _alloc(idB, bob, 100e18, 100, vault.redemptionSharePrice());
        bytes32[] memory tree = _tree(T1, a);
        _commitBook(T1, bytes32(0));
        vm.prank(keeper);
        settlement.settleAuction(T1, tree[0], bytes32(0), 110e18, 11e18, a[1].payout);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.ClaimExceedsSettlement.selector, T1));
        _claim(T1, tree, a[0]);
    }

    /// FIFO servicing reached a winner before its claim: the claim is applied pro rata, the rest refunded.
    function test_claim_afterFifoService_proRata() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = new QEVSettlement.Allocation[](1);
        a[0] = _alloc(idA, alice, 100e18, 1000, vault.redemptionSharePrice());
        bytes32[] memory tree = _settle(T1, a);
        vm.warp(T1 + 1);
        // locked 100 of 350 pending: servicing can take at most 250, and alice's request is at the head
        vm.expectRevert(IStakedUSDaiQueue.InvalidRedemptionState.selector);
        vm.prank(keeper);
        vault.serviceRedemptions(251e18);
        vm.prank(keeper);
        vault.serviceRedemptions(60e18); // takes 60 of alice's 100 at full price
        assertEq(_pending(idA), 40e18);

        uint256 vaultBefore = usdai.balanceOf(address(vault));
        _claim(T1, tree, a[0]);
        uint256 paid = a[0].payout * 40e18 / 100e18;
        assertEq(usdai.balanceOf(alice), paid);
        assertEq(usdai.balanceOf(address(vault)) - vaultBefore, a[0].payout - paid);
        assertEq(_pending(idA), 0);
        assertEq(vault.qevLockedShares(), 0);
        assertEq(usdai.balanceOf(address(settlement)), 0);
    }

    /* ---------------------------------------------------------- multiproof */

    function test_claimMultiple() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = new QEVSettlement.Allocation[](3);
        uint256 price = vault.redemptionSharePrice();
        a[0] = _alloc(idA, alice, 100e18, 500, price);
        a[1] = _alloc(idB, bob, 150e18, 200, price);
        a[2] = _alloc(idC, carol, 50e18, 10, price);
        bytes32[] memory tree = _settle(T1, a);

        // alice claims herself first; the batch skips her leaf
        _claim(T1, tree, a[0]);

        uint256[] memory idx = new uint256[](3);
        for (uint256 i; i < 3; i++) idx[i] = Merkle.indexOf(tree, _leaf(T1, a[i]));
        (uint256[] memory order, bytes32[] memory proof, bool[] memory flags) = Merkle.multiProof(tree, idx);
        QEVSettlement.Allocation[] memory batch = new QEVSettlement.Allocation[](3);
        for (uint256 i; i < 3; i++) {
            for (uint256 j; j < 3; j++) {
                if (idx[j] == order[i]) batch[i] = a[j];
            }
        }
        settlement.claimMultiple(T1, batch, proof, flags);
        assertEq(usdai.balanceOf(alice), a[0].payout);
        assertEq(usdai.balanceOf(bob), a[1].payout);
        assertEq(usdai.balanceOf(carol), a[2].payout);
        assertEq(usdai.balanceOf(address(settlement)), 0);
        assertEq(vault.qevLockedShares(), 0);

        // everything claimed: a second batch is a no-op
        settlement.claimMultiple(T1, batch, proof, flags);
        assertEq(usdai.balanceOf(bob), a[1].payout);

        // wrong proof
        batch[0].payout += 1;
        vm.expectRevert(QEVSettlement.InvalidProof.selector);
        settlement.claimMultiple(T1, batch, proof, flags);
    }

    function test_claimMultiple_reverts() public {
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = _allocs();
        bytes32[] memory none = new bytes32[](0);
        bool[] memory noFlags = new bool[](0);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionNotSettled.selector, T1));
        settlement.claimMultiple(T1, a, none, noFlags);
        bytes32[] memory tree = _settle(T1, a);
        vm.expectRevert(QEVSettlement.InvalidAmount.selector);
        settlement.claimMultiple(T1, new QEVSettlement.Allocation[](0), none, noFlags);
        // single-leaf multiproof == normal proof with all-false flags
        bytes32[] memory p = _proof(T1, tree, a[0]);
        QEVSettlement.Allocation[] memory one = new QEVSettlement.Allocation[](1);
        one[0] = a[0];
        settlement.claimMultiple(T1, one, p, new bool[](p.length));
        assertEq(usdai.balanceOf(alice), a[0].payout);
    }

    /* ------------------------------------------------------------- reveal */

    function test_reveal() public {
        vm.warp(T1);
        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.AuctionNotSettled.selector, T1));
        settlement.revealAuctionKey(T1, SK);
        _settle(T1, _allocs());

        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.InvalidKeyReveal.selector, T1));
        settlement.revealAuctionKey(T1, PK);

        vm.expectEmit();
        emit AuctionKeyRevealed(T1, SK);
        vm.prank(carol); // anyone holding the key
        settlement.revealAuctionKey(T1, SK);
        (,, bytes32 sk, bool revealed) = settlement.auctionKey(T1);
        assertEq(sk, SK);
        assertTrue(revealed);

        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.KeyAlreadyRevealed.selector, T1));
        settlement.revealAuctionKey(T1, SK);

        vm.expectRevert(abi.encodeWithSelector(QEVSettlement.KeyNotCommitted.selector, T2));
        settlement.revealAuctionKey(T2, SK);
    }

    /* -------------------------------------------------------------- admin */

    function test_setAdminFee() public {
        vm.expectRevert(QEVSettlement.InvalidFee.selector);
        vm.prank(admin);
        settlement.setAdminFee(10_001, feeRecipient);
        vm.expectRevert(QEVSettlement.InvalidAddress.selector);
        vm.prank(admin);
        settlement.setAdminFee(100, address(0));
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, bytes32(0)));
        vm.prank(keeper);
        settlement.setAdminFee(100, feeRecipient);
        vm.prank(admin);
        settlement.setAdminFee(100, feeRecipient);
        assertEq(settlement.adminFeeBps(), 100);
        assertEq(settlement.feeRecipient(), feeRecipient);
    }

    function test_setReceiptSigner() public {
        address signer = address(0x5161);
        assertEq(settlement.receiptSigner(), address(0));
        vm.expectEmit();
        emit ReceiptSignerSet(address(0), signer);
        vm.prank(admin);
        settlement.setReceiptSigner(signer);
        assertEq(settlement.receiptSigner(), signer);
    }

    function test_setReceiptSigner_notAdmin_reverts() public {
        // the keeper holds KEEPER_ROLE but not DEFAULT_ADMIN_ROLE
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, keeper, bytes32(0)));
        vm.prank(keeper);
        settlement.setReceiptSigner(address(0x5161));
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, bytes32(0)));
        vm.prank(alice);
        settlement.setReceiptSigner(alice);
        assertEq(settlement.receiptSigner(), address(0));
    }

    function test_setReceiptSigner_zero_reverts() public {
        vm.expectRevert(QEVSettlement.InvalidAddress.selector);
        vm.prank(admin);
        settlement.setReceiptSigner(address(0));

        vm.prank(admin);
        settlement.setReceiptSigner(address(0x5161));
        vm.expectRevert(QEVSettlement.InvalidAddress.selector);
        vm.prank(admin);
        settlement.setReceiptSigner(address(0)); // cannot be cleared once set either
        assertEq(settlement.receiptSigner(), address(0x5161));
    }

    function test_setReceiptSigner_rotate() public {
        address first = address(0x5161);
        address second = address(0x5162);
        vm.prank(admin);
        settlement.setReceiptSigner(first);
        vm.expectEmit();
        emit ReceiptSignerSet(first, second);
        vm.prank(admin);
        settlement.setReceiptSigner(second);
        assertEq(settlement.receiptSigner(), second);
    }

    function test_emptySettlement() public {
        vm.warp(T1);
        _commitBook(T1, keccak256("book"));
        vm.prank(keeper);
        settlement.settleAuction(T1, bytes32(0), keccak256("book"), 0, 0, 0);
        assertTrue(settlement.isSettled(T1));
        settlement.revealAuctionKey(T1, SK);
    }

    /* --------------------------------------------------------------- fuzz */

    /// Any mix of fills/rates/prices: claims pay exactly the leaves, pending shares drop by the fills,
    /// the escrow ends at zero and the remaining holders' price never drops.
    function testFuzz_settleAndClaim(uint256 sa, uint256 sb, uint256 bpa, uint256 bpb, uint256 yield_) public {
        sa = bound(sa, 1, 100e18);
        sb = bound(sb, 1, 200e18);
        bpa = bound(bpa, 10, 10_000);
        bpb = bound(bpb, 10, 10_000);
        yield_ = bound(yield_, 0, 5000e18);
        vm.prank(admin);
        vault.setExternalAssets(yield_);
        vm.warp(T1);
        uint256 price = vault.redemptionSharePrice();
        QEVSettlement.Allocation[] memory a = new QEVSettlement.Allocation[](2);
        a[0] = _alloc(idA, alice, sa, bpa, price);
        a[1] = _alloc(idB, bob, sb, bpb, price);
        bytes32[] memory tree = _settle(T1, a);
        assertGe(vault.redemptionSharePrice(), price);
        _claim(T1, tree, a[1]);
        _claim(T1, tree, a[0]);
        assertEq(usdai.balanceOf(alice), a[0].payout);
        assertEq(usdai.balanceOf(bob), a[1].payout);
        assertEq(_pending(idA), 100e18 - sa);
        assertEq(_pending(idB), 200e18 - sb);
        assertEq(usdai.balanceOf(address(settlement)), 0);
        assertEq(vault.qevLockedShares(), 0);
        assertGe(vault.redemptionSharePrice(), price);
    }

    /// Servicing between settle and claim never lets the escrow pay more than settled, nor strand USDai.
    function testFuzz_serviceThenClaim(uint256 fill, uint256 bp, uint256 serviced) public {
        fill = bound(fill, 1e18, 100e18);
        bp = bound(bp, 10, 10_000);
        vm.warp(T1);
        QEVSettlement.Allocation[] memory a = new QEVSettlement.Allocation[](1);
        a[0] = _alloc(idA, alice, fill, bp, vault.redemptionSharePrice());
        bytes32[] memory tree = _settle(T1, a);
        serviced = bound(serviced, 1, 350e18 - fill);
        vm.warp(T1 + 1);
        vm.prank(keeper);
        vault.serviceRedemptions(serviced);
        uint256 pendingA = _pending(idA);
        _claim(T1, tree, a[0]);
        uint256 applied = fill < pendingA ? fill : pendingA;
        assertEq(usdai.balanceOf(alice), a[0].payout * applied / fill);
        assertEq(usdai.balanceOf(address(settlement)), 0);
        assertEq(vault.qevLockedShares(), 0);
        assertEq(_pending(idA), pendingA - applied);
    }

    /* ------------------------------------------------------ JS tree check */

    // The contract leaf hash and the Solidity tree port match the JS library (npm merkle-tree).
    function test_matchesOpenZeppelinJsTree() public view {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/test/fixtures/standard-tree.json"));
        uint64 auctionId = uint64(vm.parseJsonUint(json, ".auctionId"));
        uint256[] memory ids = vm.parseJsonUintArray(json, ".redemptionIds");
        address[] memory controllers = vm.parseJsonAddressArray(json, ".controllers");
        uint256[] memory filled = vm.parseJsonUintArray(json, ".sharesFilled");
        uint256[] memory burnt = vm.parseJsonUintArray(json, ".sharesBurnt");
        uint256[] memory payouts = vm.parseJsonUintArray(json, ".payouts");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".leafHashes");
        bytes32[] memory leaves = new bytes32[](ids.length);
        for (uint256 i; i < ids.length; i++) {
            leaves[i] = settlement.allocationLeaf(auctionId, ids[i], controllers[i], filled[i], burnt[i], payouts[i]);
            assertEq(leaves[i], hashes[i]);
        }
        bytes32[] memory tree = Merkle.build(leaves);
        bytes32 root = vm.parseJsonBytes32(json, ".root");
        assertEq(tree[0], root);
        bytes32[] memory p0 = vm.parseJsonBytes32Array(json, ".proof0");
        bytes32[] memory mine = Merkle.proof(tree, Merkle.indexOf(tree, hashes[0]));
        assertEq(mine.length, p0.length);
        for (uint256 i; i < p0.length; i++) assertEq(mine[i], p0[i]);

    }

    function test_multiProofMatchesOpenZeppelinJs() public view {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/test/fixtures/standard-tree.json"));
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".leafHashes");
        bytes32[] memory tree = Merkle.build(_copy(hashes));
        uint256[] memory mIdx = vm.parseJsonUintArray(json, ".multiLeafIndex");
        uint256[] memory tIdx = new uint256[](mIdx.length);
        for (uint256 i; i < mIdx.length; i++) tIdx[i] = Merkle.indexOf(tree, hashes[mIdx[i]]);
        (uint256[] memory order, bytes32[] memory mp, bool[] memory flags) = Merkle.multiProof(tree, tIdx);
        _eq(mp, vm.parseJsonBytes32Array(json, ".multiProof"));
        bool[] memory jsFlags = vm.parseJsonBoolArray(json, ".multiProofFlags");
        assertEq(flags.length, jsFlags.length);
        for (uint256 i; i < flags.length; i++) assertEq(flags[i], jsFlags[i]);
        for (uint256 i; i < order.length; i++) assertEq(tree[order[i]], hashes[mIdx[i]]);
    }

    function _copy(bytes32[] memory a) internal pure returns (bytes32[] memory b) {
        b = new bytes32[](a.length);
        for (uint256 i; i < a.length; i++) b[i] = a[i];
    }

    function _eq(bytes32[] memory a, bytes32[] memory b) internal pure {
        assertEq(a.length, b.length);
        for (uint256 i; i < a.length; i++) assertEq(a[i], b[i]);
    }
}
